"""The loopscope dashboard: the state of a trace at a cursor, and keys to move it.

The App holds a cursor (how many of the model's events have been applied)
and a mode: LIVE keeps the cursor at the end of a file that is still
growing, REPLAY paces it through the trace at a speed, PAUSED holds it.  A
10 Hz timer moves the cursor and, when anything changed, asks the model for
``state_at(cursor)`` and shows it: the screen is never redrawn per event.
The model and its reading belong to :mod:`tracer`; this module only shows.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from pathlib import Path
from functools import partial
from typing import Any, Callable, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (DataTable, Footer, Input, Label, ProgressBar, RichLog, Static,
                             TabbedContent, TabPane, Tabs, Tree)
from textual.worker import get_current_worker

from tracer.model import BlockingCall, ThreadJob
from tracer.summary import pending_word
from tui.child import ChildApp
from tui.commands import LoopscopeCommands
from tui.describe import detail, event_line, seconds, where
from tui.deferreds import DeferredTree
from tui.eventlog import EventLog
from tui.feed import Feed
from tui.filter import EventFilter
from tui.health import HealthStrip
from tui.screens import GoToScreen, HelpScreen
from tui.tables import Table
from tui.text import clean, clean_lines
from tui import views

SPEEDS: tuple[float, ...] = (1.0, 2.0, 10.0, 100.0, math.inf)
TICK_S = 0.1
WIDE = 110          # columns from which the detail pane sits beside the views
VIEWS = ("blocking", "callbacks", "events", "descriptors", "deferreds", "threads")
TABLE_VIEWS = ("blocking", "callbacks", "descriptors", "threads")
PLACEHOLDER = Text("Select a row to see every field.", style="dim")


def speed_label(speed: float) -> str:
    return "max" if math.isinf(speed) else f"{speed:g}x"


class LoopscopeApp(App[int]):
    """The dashboard over one trace file (see module docstring)."""

    CSS_PATH = "app.tcss"
    # Narrow terminals put the detail pane under the views instead of beside.
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar = [(0, "-short"), (32, "-tall")]
    TITLE = "loopscope"
    COMMANDS: ClassVar = App.COMMANDS | {LoopscopeCommands}
    BINDINGS: ClassVar = [
        Binding("space", "play_pause", "Play/pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("left", "step(-1)", "Step back one event", show=False),
        Binding("right", "step(1)", "Step forward one event", show=False),
        Binding("shift+left", "jump(-1)", "Back one second", show=False),
        Binding("shift+right", "jump(1)", "Forward one second", show=False),
        Binding("n", "next_blocking", "Next block"),
        Binding("N", "previous_blocking", "Prev block", key_display="N"),
        Binding("g", "goto", "Go to"),
        Binding("home", "start", "Go to the start", show=False),
        Binding("end", "end", "Go to the end", show=False),
        Binding("f", "follow", "Follow"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        *(Binding(str(number), f"show_view('{name}')", f"Show the {name.title()} view",
                  show=False) for number, name in enumerate(VIEWS, 1)),
        Binding("escape", "clear_filter", "Clear the events filter", show=False),
        Binding("d", "toggle_detail", "Show/hide the detail pane", show=False),
        Binding("s", "sort_callbacks", "Callbacks: sort by the next column", show=False),
        Binding("r", "reverse_sort", "Callbacks: reverse the sort", show=False),
    ]
    # Keys that belong to a widget, listed in help next to the App's own.
    WIDGET_KEYS: ClassVar = [
        ("↑/↓ pgup/pgdn", "Move in a table or the event log (the log moves the cursor)"),
        ("enter", "Blocking/Threads: move the cursor to the selected row's moment"),
        ("click header", "Callbacks: sort by that column (again: reverse)"),
        ("tab / shift+tab", "Move focus between the views, the filter and the panes"),
        ("ctrl+p", "Command palette: speeds, views, panes, filter, theme"),
    ]

    def __init__(self, feed: Feed, *, mode: str = "replay", speed: float = 1.0,
                 child: ChildApp | None = None, title: str | None = None) -> None:
        super().__init__()
        self.feed = feed
        self.child = child
        self.trace_name = title or Path(feed.path).name
        self.mode = mode                       # "live" | "replay" | "paused"
        self.speed = speed
        self.cursor = 0                        # events applied
        self.play_ns = 0.0                     # replay clock (trace ns)
        self.child_status: str | None = None
        self.callback_sort = "total"
        self.callback_reverse = True
        self.event_filter: EventFilter | None = None
        self._last_tick = time.monotonic()
        self._shown: tuple[Any, ...] | None = None
        self._counts: tuple[int, bool] | None = None
        self._state: Any = None
        self._warned = 0
        self._error_shown = False

    # -- layout ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="header"):
            yield Label(Text(clean(self.trace_name, 40)), id="hdr-name")
            yield Label("", id="hdr-mode")
            yield Label("", id="hdr-info")
        yield Static("", id="banner")
        yield HealthStrip(id="health")
        with Horizontal(id="main"):
            with TabbedContent(id="views", initial="blocking"):
                with TabPane("Blocking", id="blocking"):
                    yield Table(views.BLOCKING_COLUMNS, id="blocking-table")
                with TabPane("Callbacks", id="callbacks"):
                    yield Table(views.CALLBACK_COLUMNS, id="callbacks-table")
                with TabPane("Events", id="events"):
                    yield Input(placeholder="/ filter: kind:call fd:7 site:dataReceived text",
                                id="filter")
                    yield EventLog(self._describe_event, id="eventlog")
                with TabPane("Descriptors", id="descriptors"):
                    yield Table(views.DESCRIPTOR_COLUMNS, id="descriptors-table")
                with TabPane("Deferreds", id="deferreds"):
                    yield DeferredTree(id="deferred-tree")
                with TabPane("Threads", id="threads"):
                    yield Table(views.THREAD_COLUMNS, id="threads-table")
            with VerticalScroll(id="detail", can_focus=False):
                yield Static(PLACEHOLDER, id="detail-text")
        if self.child is not None:
            yield RichLog(id="output", markup=False, highlight=False, wrap=True, max_lines=5000)
        yield ProgressBar(id="progress", show_eta=False)
        yield Footer()

    def on_mount(self) -> None:
        # The dashboard's widgets live on the default screen; the App's own
        # query_one would search whichever modal screen is on top.
        self.main = self.screen
        # Tabs would take ←/→ for switching tabs; views switch with 1-6 instead.
        self.main.query_one("#views Tabs", Tabs).can_focus = False
        if self.child is not None:
            self.main.query_one("#output", RichLog).border_title = "app output"
        self.feed.start()
        if self.child is not None:
            self.child.start(self._child_line, self._child_exit)
        self.set_interval(TICK_S, self.tick)
        self.tick()

    # -- the clock --------------------------------------------------------------
    def tick(self) -> None:
        """Move the cursor by the mode and redraw if anything changed."""
        try:
            self._tick()
        except NoMatches:
            # The widgets are composed once and never removed, so a missing
            # one means the App is exiting and its interval outlived them.
            return

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        self._show_feed_status()
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:
            total = len(model)
            if self.mode == "live":
                self.cursor = total
                self.play_ns = float(self._time_at(self.cursor))
            elif self.mode == "replay":
                self._advance(elapsed, total)
            self.refresh_view()

    def _advance(self, elapsed: float, total: int) -> None:
        model = self.feed.model
        if math.isinf(self.speed):
            self.cursor = total
            self.play_ns = float(self._time_at(total))
        else:
            self.play_ns += elapsed * self.speed * 1e9
            self.cursor = min(model.index_at(int(self.play_ns)), total)
        if self.cursor >= total and self.feed.loaded:
            self.mode = "live" if self.feed.follow else "paused"
            self.play_ns = float(self._time_at(total))

    def _time_at(self, cursor: int) -> int:
        """Trace time after the first ``cursor`` events."""
        return self.feed.model.time_ns(cursor - 1) if cursor > 0 else 0

    def move_cursor(self, cursor: int, pause: bool = True) -> None:
        """Put the cursor after event ``cursor - 1`` (user navigation pauses)."""
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:
            self.cursor = max(0, min(cursor, len(model)))
            self.play_ns = float(self._time_at(self.cursor))
            if pause:
                self.mode = "paused"
            self.refresh_view()

    # -- drawing ----------------------------------------------------------------
    def refresh_view(self, force: bool = False) -> None:
        """Show the state at the cursor, if it (or what shows it) changed.

        While a big file loads only the event count grows: then just the
        header is redrawn, leaving the loading thread the CPU."""
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:     # the feed thread appends to the same model
            self._redraw(model, force)

    def _redraw(self, model: Any, force: bool) -> None:
        active = self.main.query_one("#views", TabbedContent).active
        flt = self.event_filter
        key = (self.cursor, active, self.mode, self.speed, self.child_status,
               self.callback_sort, self.callback_reverse,
               flt and (flt.query, flt.scanned, len(flt.rows)))
        counts = (len(model), self.feed.loaded)
        if key == self._shown and not force:
            if counts != self._counts:
                self._counts = counts
                self._show_header(model, self._state)
            return
        state = model.state_at(self.cursor)
        self._state = state
        self._shown, self._counts = key, counts
        self._show_header(model, state)
        self._show_banner(model, state)
        self._show_health(model, state)
        self._show_active_view(active, model, state)

    def _show_header(self, model: Any, state: Any) -> None:
        mode = self.main.query_one("#hdr-mode", Label)
        if self.mode == "replay":
            mode.update(f" REPLAY {speed_label(self.speed)} ")
        elif self.mode == "live" and model.state.ended:
            mode.update(" LIVE (ended) ")   # the traced app finished its trace
        else:
            mode.update(f" {self.mode.upper()} ")
        if not mode.has_class(f"mode-{self.mode}"):
            mode.set_classes(f"mode-{self.mode}")
        threshold = model.threshold_ns / 1e6
        position = f"{seconds(self._time_at(self.cursor))} / {seconds(model.duration_ns)}"
        if self.main.size.width >= WIDE:
            parts = [position, f"events {self.cursor:,}/{len(model):,}",
                     f"dropped {state.dropped:,}", f"threshold {threshold:g} ms"]
        else:   # keep every figure on an 80-column line
            parts = [position, f"ev {self.cursor:,}/{len(model):,}",
                     f"drop {state.dropped:,}", f"thr {threshold:g}ms"]
        if self.child_status:
            parts.insert(0, self.child_status)
        if state.runtime != "reactor":
            parts.append(state.runtime)
        self.main.query_one("#hdr-info", Label).update(Text(" │ ".join(parts)))
        self._use_runtime_words(state.runtime)

    def _use_runtime_words(self, runtime: str) -> None:
        """The Deferreds tab is the Tasks tab where the runtime is asyncio."""
        tab = self.main.query_one("#views", TabbedContent).get_tab("deferreds")
        word = pending_word(runtime)
        if str(tab.label) != word:
            tab.label = word

    def _show_banner(self, model: Any, state: Any) -> None:
        banner = self.main.query_one("#banner", Static)
        running = state.running
        if running is None:
            banner.display = False
            return
        blocked_ns = running.blocked_ns
        banner.update(Text(
            f" BLOCKED {blocked_ns / 1e9:.1f} s in {where(model.site(running.site))}"))
        banner.display = True

    def _show_health(self, model: Any, state: Any) -> None:
        blocks = [b.t_ns for b in state.blocking]
        self.main.query_one(HealthStrip).show(model.state.loop, blocks,
                                              self._time_at(self.cursor), model.duration_ns)

    def _show_active_view(self, active: str, model: Any, state: Any) -> None:
        cursor_ns = self._time_at(self.cursor)
        rows = {
            "blocking": lambda: views.blocking_rows(state, model),
            "callbacks": lambda: views.callback_rows(state, model, self.callback_sort,
                                                     self.callback_reverse),
            "descriptors": lambda: views.descriptor_rows(state, cursor_ns),
            "threads": lambda: views.thread_rows(state, model, cursor_ns),
        }.get(active)
        if rows is not None:
            table = self.main.query_one(f"#{active}-table", Table)
            table.replace_rows(rows())
            obj = table.row_object(table.highlighted_key)
            if obj is None:
                self.main.query_one("#detail-text", Static).update(PLACEHOLDER)
            else:
                self._show_detail(type(obj).__name__, obj)
        elif active == "deferreds":
            self._show_deferreds(model, state, cursor_ns)
        elif active == "events":
            self._show_events(model)

    def _show_events(self, model: Any) -> None:
        log = self.main.query_one(EventLog)
        if self.event_filter is None:
            log.set_rows(range(len(model)))
        else:
            self._extend_filter()
            log.set_rows(self.event_filter.rows)
        log.show_index(self.cursor - 1 if self.cursor else None)
        if log.has_focus and log.selected_row is not None:
            self._show_detail(f"event #{log.rows[log.selected_row]}",
                              model.event(log.rows[log.selected_row]))

    def _show_deferreds(self, model: Any, state: Any, cursor_ns: int) -> None:
        self.main.query_one(DeferredTree).show(state, model, cursor_ns)

    def _show_detail(self, title: str, obj: Any) -> None:
        self.main.query_one("#detail-text", Static).update(detail(title, obj, self.feed.model))

    def _show_feed_status(self) -> None:
        feed = self.feed
        progress = self.main.query_one("#progress", ProgressBar)
        progress.display = not feed.loaded and feed.bytes_total > 0
        if progress.display:
            progress.update(total=feed.bytes_total, progress=feed.bytes_done)
        while self._warned < len(feed.warnings):
            self.notify(clean(feed.warnings[self._warned], 200), severity="warning")
            self._warned += 1
        if feed.error and not self._error_shown:
            self._error_shown = True
            self.notify(clean(feed.error, 200), severity="error", timeout=30)

    # -- events from widgets -------------------------------------------------------
    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        if self.main.query_one("#views", TabbedContent).active not in TABLE_VIEWS:
            self.main.query_one("#detail-text", Static).update(PLACEHOLDER)
        self.refresh_view()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if isinstance(table, Table):
            obj = table.row_object(event.row_key.value)
            if obj is not None:
                self._show_detail(type(obj).__name__, obj)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a blocking call or a thread job moves the cursor to it."""
        table = event.data_table
        if not isinstance(table, Table) or self.feed.model is None:
            return
        obj = table.row_object(event.row_key.value)
        if isinstance(obj, BlockingCall):
            self.move_cursor(obj.index + 1)
        elif isinstance(obj, ThreadJob):
            self.move_cursor(self.feed.model.index_at(obj.submitted_ns))

    @on(DataTable.HeaderSelected, "#callbacks-table")
    def _sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value
        if column == self.callback_sort:
            self.callback_reverse = not self.callback_reverse
        else:
            self.callback_sort, self.callback_reverse = column, column not in ("fn", "kind")
        self.refresh_view()

    @on(Tree.NodeHighlighted)
    def _node_highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        if event.node.data is not None:
            self._show_detail(type(event.node.data).__name__, event.node.data)

    @on(EventLog.Selected)
    def _event_selected(self, event: EventLog.Selected) -> None:
        self.move_cursor(event.index + 1)
        if self.feed.model is not None:
            self._show_detail(f"event #{event.index}", self.feed.model.event(event.index))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.set_filter(event.value)
        self.main.query_one(EventLog).focus()

    def _describe_event(self, index: int) -> Text:
        model = self.feed.model
        return event_line(model, model.event(index), model.time_ns(index))

    # -- the filter -------------------------------------------------------------
    def set_filter(self, query: str) -> None:
        """Show only events matching ``query`` in the Events view ('' = all)."""
        self.main.query_one("#views", TabbedContent).active = "events"
        self.main.query_one("#filter", Input).value = query
        self.event_filter = EventFilter(query) if query.strip() else None
        self.refresh_view(force=True)

    def _extend_filter(self) -> None:
        """Scan events the filter has not seen yet, in a thread."""
        flt, model = self.event_filter, self.feed.model
        if flt is not None and model is not None and not flt.busy and flt.scanned < len(model):
            flt.busy = True
            self._scan_filter(flt, len(model))

    @work(thread=True, exclusive=True, group="filter")
    def _scan_filter(self, flt: EventFilter, stop: int) -> None:
        model = self.feed.model
        worker = get_current_worker()
        try:
            flt.scan(model, stop, lambda: worker.is_cancelled or flt is not self.event_filter)
        finally:
            flt.busy = False

    # -- child process (run --tui) ------------------------------------------------
    def _child_line(self, line: str) -> None:
        if not self._child_ending():
            self.call_from_thread(self._write_output, line)

    def _write_output(self, line: str) -> None:
        self.main.query_one("#output", RichLog).write(Text(clean_lines(line)))

    def _child_exit(self, code: int) -> None:
        if not self._child_ending():
            self.call_from_thread(self._child_exited, code)

    def _child_ending(self) -> bool:
        """True once the dashboard is quitting and stopping the child: its
        last lines and exit are not news then (and the App may be gone)."""
        return self.child is None or self.child.terminated_by_us or not self.is_running

    def _child_exited(self, code: int) -> None:
        self.child_status = f"app exited ({code})"
        self.notify(f"The app exited with code {code}; the trace stays open for browsing.",
                    timeout=8)
        self.refresh_view()

    # -- actions ----------------------------------------------------------------
    def action_play_pause(self) -> None:
        model = self.feed.model
        if self.mode == "paused":
            if model is not None and self.cursor >= len(model) and self.feed.loaded:
                self.mode = "live" if self.feed.follow else "paused"
            else:
                self.mode = "replay"
        else:
            self.mode = "paused"
        self._last_tick = time.monotonic()
        self.refresh_view()

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        if self.mode == "paused":
            self.mode = "replay"
            self._last_tick = time.monotonic()
        self.refresh_view()

    def action_faster(self) -> None:
        self.set_speed(SPEEDS[min(self._speed_index() + 1, len(SPEEDS) - 1)])

    def action_slower(self) -> None:
        self.set_speed(SPEEDS[max(self._speed_index() - 1, 0)])

    def _speed_index(self) -> int:
        """The preset at or below the current speed (--speed may be any)."""
        return max((i for i, s in enumerate(SPEEDS) if s <= self.speed), default=0)

    def action_step(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_jump(self, direction: int) -> None:
        model = self.feed.model
        if model is not None:
            target = self._time_at(self.cursor) + direction * 1_000_000_000
            self.move_cursor(model.index_at(max(target, 0)) if target >= 0 else 0)

    def action_start(self) -> None:
        self.move_cursor(0)

    def action_end(self) -> None:
        if self.feed.model is not None:
            self.move_cursor(len(self.feed.model))

    def action_follow(self) -> None:
        """Jump to the end and stay there as the file grows."""
        if self.feed.model is None:
            return
        self.move_cursor(len(self.feed.model), pause=False)
        self.mode = "live" if self.feed.follow else "paused"
        if not self.feed.follow:
            self.notify("This trace is a saved file: nothing more will come. Use `loopscope live` "
                        "to follow a file that is being written.", timeout=5)
        self.refresh_view()

    def _blocking_positions(self) -> list[int]:
        """Cursor positions just after each blocking call's line, in order."""
        with self.feed.lock:
            return sorted({b.index + 1 for b in self.feed.model.state.blocking})

    def action_next_blocking(self) -> None:
        if self.feed.model is None:
            return
        positions = self._blocking_positions()
        later = positions[bisect_right(positions, self.cursor):]
        if later:
            self._go_to_blocking(later[0])
        else:
            self.notify("No blocking call after the cursor.", timeout=3)

    def action_previous_blocking(self) -> None:
        if self.feed.model is None:
            return
        positions = self._blocking_positions()
        earlier = positions[:bisect_right(positions, self.cursor - 1)]
        if earlier:
            self._go_to_blocking(earlier[-1])
        else:
            self.notify("No blocking call before the cursor.", timeout=3)

    def _go_to_blocking(self, position: int) -> None:
        """Cursor just after a blocking call; show it selected in Blocking."""
        self.main.query_one("#views", TabbedContent).active = "blocking"
        self.move_cursor(position)
        blocking = self._state.blocking
        number = next(i for i in range(len(blocking) - 1, -1, -1)
                      if blocking[i].index + 1 == position)
        self.main.query_one("#blocking-table", Table).select_key(f"b{number}")

    def action_goto(self) -> None:
        def go(position: tuple[str, int] | None) -> None:
            model = self.feed.model
            if position is None or model is None:
                return
            what, value = position
            self.move_cursor(value + 1 if what == "event" else model.index_at(value))

        self.push_screen(GoToScreen(), go)

    def action_filter(self) -> None:
        self.main.query_one("#views", TabbedContent).active = "events"
        self.main.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        if self.event_filter is not None or self.main.query_one("#filter", Input).has_focus:
            self.set_filter("")
            self.main.query_one(EventLog).focus()

    def action_help(self) -> None:
        keys = [(b.key_display or b.key, b.description) for b in self.BINDINGS]
        self.push_screen(HelpScreen([*keys, *self.WIDGET_KEYS]))

    def action_show_view(self, name: str) -> None:
        self.main.query_one("#views", TabbedContent).active = name

    def action_toggle_detail(self) -> None:
        pane = self.main.query_one("#detail")
        pane.display = not pane.display

    def action_sort_callbacks(self) -> None:
        keys = views.CALLBACK_SORT_KEYS
        self.callback_sort = keys[(keys.index(self.callback_sort) + 1) % len(keys)]
        self.callback_reverse = self.callback_sort not in ("fn", "kind")
        self.action_show_view("callbacks")
        self.refresh_view()

    def action_reverse_sort(self) -> None:
        self.callback_reverse = not self.callback_reverse
        self.action_show_view("callbacks")
        self.refresh_view()

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        """(title, help, callback) for the command palette."""
        commands: list[tuple[str, str, Callable[[], Any]]] = [
            (f"Speed {speed_label(s)}", "Replay at this speed", partial(self.set_speed, s))
            for s in SPEEDS
        ]
        commands += [(f"View: {name.title()}", "Show this view",
                      partial(self.action_show_view, name)) for name in VIEWS]
        commands += [
            ("Pause", "Hold the cursor where it is", partial(self.move_cursor, self.cursor)),
            ("Go to the start", "Cursor to the first event", self.action_start),
            ("Go to the end", "Cursor to the last event", self.action_end),
            ("Follow the file", "Stay at the end as the trace grows", self.action_follow),
            ("Clear the events filter", "Show every event", partial(self.set_filter, "")),
            ("Toggle the detail pane", "Show or hide the pane on the right",
             self.action_toggle_detail),
        ]
        if self.child is not None:
            commands.append(("Toggle the app output pane", "Show or hide the app's output",
                             self.action_toggle_output))
        return commands

    def action_toggle_output(self) -> None:
        pane = self.main.query_one("#output")
        pane.display = not pane.display

    async def action_quit(self) -> None:
        self.shutdown()
        self.exit(self.exit_code_for_cli())

    def shutdown(self) -> None:
        """Stop the child (if any) and the feed; safe to call twice."""
        if self.child is not None:
            self.child.terminate()
        self.feed.stop()

    def on_unmount(self) -> None:
        self.shutdown()

    def exit_code_for_cli(self) -> int:
        """The child's own exit status when it ended by itself, else 0."""
        if self.child is None or self.child.terminated_by_us:
            return 0
        code = self.child.returncode
        return 0 if code is None else code
