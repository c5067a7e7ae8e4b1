"""The loopscope dashboard: the state of a trace at a cursor, and keys to move it.

Where the cursor is and how it moves (LIVE, REPLAY at a speed, PAUSED) is
:class:`tui.playback.Playback`'s business; the keys are :mod:`tui.keys`.  This App maps keys
to playback and, from a 10 Hz timer, shows ``state_at(cursor)`` when anything changed: the
screen is never redrawn per event.  The model and its reading belong to :mod:`tracer`; this
module only shows.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
    Tree,
)
from textual.worker import get_current_worker

from tracer.folder import program_of
from tracer.lints import Lint, lints
from tracer.model import Model, Stall, ThreadJob, TraceState
from tracer.names import frame_site, pending_word, stall_culprit, user_frame
from tui import detail, views
from tui.child import ChildApp
from tui.commands import Command, LoopscopeCommands
from tui.deferreds import DeferredTree, TreeData
from tui.describe import Event, culprit, event_line, seconds, where
from tui.eventlog import EventLog
from tui.feed import Feed
from tui.folderfeed import FolderFeed
from tui.footer import KeysFooter
from tui.filter import EventFilter
from tui.health import HealthStrip
from tui.keys import KEYS, VIEWS, help_listing
from tui.playback import SPEEDS, Mode, Playback, speed_label
from tui.processes import Lane, ProcessLanes
from tui.screens import GoToScreen, HelpScreen
from tui.tables import Table
from tui.text import clean, clean_lines
from tui.viewtabs import ViewTabs

TICK_S = 0.1
#: While a trace is still being read, the clock redraws the views at most this often: a
#: redraw holds the GIL for tens of milliseconds, and at 10 Hz it halved the loading speed of
#: a 10M-event trace in a real terminal.  Keys still redraw at once.
LOADING_REDRAW_S = 0.5
#: How long (trace time) the banner stays after a stall ended: long enough to be read.
BANNER_HOLD_NS = 1_500_000_000
WIDE = 110          # columns from which the detail pane sits beside the views
TABLE_VIEWS = ("blocking", "callbacks", "descriptors", "threads", "warnings")
#: The widget of each view that takes the focus when the view is shown.
VIEW_WIDGETS = {"blocking": "#blocking-table", "callbacks": "#callbacks-table",
                "events": "#eventlog", "descriptors": "#descriptors-table",
                "deferreds": "#deferred-tree", "threads": "#threads-table",
                "warnings": "#warnings-table"}
#: The actions of the dashboard's keys (check_action decides when they apply).
OWN_ACTIONS = frozenset(k.action.split("(")[0] for k in KEYS)
#: What an empty table means, for the detail pane.
EMPTY = {"blocking": "the loop has not been blocked", "callbacks": "no callback has run",
         "descriptors": "no descriptor is watched", "threads": "no thread-pool job",
         "warnings": "no warning"}
PLACEHOLDER = Text("Select a row to see it in detail here.", style="dim")


class LoopscopeApp(App[int]):
    """The dashboard over one trace file (see module docstring)."""

    CSS_PATH = "app.tcss"
    # Narrow terminals put the detail pane under the views instead of beside.  (Textual
    # types these as instance attributes, so they cannot be ClassVars here.)
    HORIZONTAL_BREAKPOINTS: list[tuple[int, str]] | None = [  # noqa: RUF012
        (0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS: list[tuple[int, str]] | None = [(0, "-short"), (32, "-tall")]  # noqa: RUF012
    TITLE = "loopscope"
    COMMANDS: ClassVar = App.COMMANDS | {LoopscopeCommands}
    # Priority: the App sees its keys before the focused widget does.  Otherwise a key typed
    # right after one that moves the focus (``/``, Enter, 1-6) would still go to the widget
    # that had it, and tables and trees would keep ←/→, home/end and space for themselves.
    # check_action hands the keys back to the filter box and to modal screens.
    # Help and Quit first: the Footer cuts what does not fit at its end.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(k.key, k.action, k.footer or k.description, show=k.footer is not None,
                key_display=k.display, priority=True)
        for k in sorted(KEYS, key=lambda k: k.action not in ("help", "quit"))
    ]

    def __init__(self, feed: Feed | FolderFeed, *, mode: Mode = Mode.REPLAY, speed: float = 1.0,
                 child: ChildApp | None = None, title: str | None = None) -> None:
        super().__init__()
        self.feed = feed
        self.child = child
        self._trace_label = clean(title or Path(feed.path).name, 40)
        self._title = title or Path(feed.path).name   # with the process shown, in a folder
        self.playback = Playback(mode, speed, followable=feed.follow)
        self.child_status: str | None = None
        self.event_filter: EventFilter | None = None
        self._shown: tuple[object, ...] | None = None
        self._drawn_at = 0.0     # time.monotonic() of the last full redraw
        self._counts: tuple[int, bool] | None = None
        self._state: TraceState | None = None
        self._lints: list[Lint] = []
        self._warned = 0
        self._error_shown = False
        self._banner_text = ""   # what the banner row says (empty: no stall at the cursor)

    # -- layout ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="header"):
            yield Label(Text(self._trace_label), id="hdr-name")
            yield Label("", id="hdr-mode")
            yield Label("", id="hdr-info")
        yield Static("", id="banner")
        yield HealthStrip(id="health")
        if isinstance(self.feed, FolderFeed):
            yield ProcessLanes(id="processes")
        with Horizontal(id="main"):
            with ViewTabs(id="views", initial="blocking"):
                with TabPane("Blocking", id="blocking"):
                    yield Table(views.BLOCKING_COLUMNS, sort="dur", id="blocking-table")
                with TabPane("Callbacks", id="callbacks"):
                    yield Table(views.CALLBACK_COLUMNS, sort="total", id="callbacks-table")
                with TabPane("Events", id="events"):
                    with Horizontal(id="filter-bar"):
                        yield Input(placeholder="/ filter: kind:timer dur>50ms site:parse fd:7 "
                                    "word", id="filter")
                        yield Label("", id="filter-status")
                    yield EventLog(self._describe_event, id="eventlog")
                with TabPane("Descriptors", id="descriptors"):
                    yield Table(views.DESCRIPTOR_COLUMNS, sort="fd", reverse=False,
                                id="descriptors-table")
                with TabPane("Deferreds", id="deferreds"):
                    yield DeferredTree(id="deferred-tree")
                with TabPane("Threads", id="threads"):
                    yield Table(views.THREAD_COLUMNS, sort="job", id="threads-table")
                with TabPane("Warnings", id="warnings"):
                    yield Table(views.WARNING_COLUMNS, id="warnings-table")
            with VerticalScroll(id="detail", can_focus=False):
                yield Static(PLACEHOLDER, id="detail-text")
        if self.child is not None:
            yield RichLog(id="output", markup=False, highlight=False, wrap=True, max_lines=5000)
        yield ProgressBar(id="progress", show_eta=False)
        yield KeysFooter(show_command_palette=False)

    def on_resize(self, event: Resize) -> None:
        for footer in self.query(Footer):    # the compact Footer fits more keys in 80 columns
            footer.compact = event.size.width < WIDE

    def on_mount(self) -> None:
        # The dashboard's widgets live on the default screen; the App's own
        # query_one would search whichever modal screen is on top.
        self.main = self.screen
        # Tabs would take ←/→ for switching tabs (views switch with 1-6 instead), and they
        # got the focus when the screen was composed: ←/→ step from the first moment.
        self.main.query_one("#views Tabs", Tabs).can_focus = False
        self._focus_view("blocking")
        if self.child is not None:
            self.main.query_one("#output", RichLog).border_title = "app output"
        self.feed.start()
        if self.child is not None:
            self.child.start(self._child_line, self._child_exit)
        self.set_interval(TICK_S, self.tick)
        self.tick()
        # Python's full collections walk every object alive; Textual's, made at start-up and
        # kept till the end, are most of them (75,000), so one took 30-70 ms of a key's
        # 200 ms budget.  Frozen after the first screen, they are left out of every
        # collection until the App ends (on_unmount); they are modules, widgets and styles.
        self.call_after_refresh(gc.freeze)

    # -- the clock --------------------------------------------------------------
    def tick(self) -> None:
        """Move the cursor by the mode and redraw if anything changed."""
        try:
            self._show_feed_status()
            self._navigate(lambda model: self.playback.tick(model, self.feed.loaded), clock=True)
            self._show_processes()
        except NoMatches:
            # The widgets are composed once and never removed, so a missing
            # one means the App is exiting and its interval outlived them.
            return

    def _navigate(self, move: Callable[[Model], object], clock: bool = False) -> None:
        """Apply ``move`` to the playback over the model, then show the result (nothing
        while no header has been read yet); a move of the ``clock`` is shown at most every
        LOADING_REDRAW_S while the trace loads."""
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:     # the feed thread appends to the same model
            move(model)
            self._redraw(model, force=False, clock=clock)

    @property
    def cursor_ns(self) -> int:
        """Trace time at the cursor."""
        model = self.feed.model
        return 0 if model is None else Playback.time_at(model, self.playback.cursor)

    # -- drawing ----------------------------------------------------------------
    def refresh_view(self, force: bool = False) -> None:
        """Show the state at the cursor, if it (or what shows it) changed."""
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:
            self._redraw(model, force)

    def _redraw(self, model: Model, force: bool, clock: bool = False) -> None:
        """While a big file loads only the event count grows: then just the
        header is redrawn, leaving the loading thread the CPU; so it is when the clock
        moved the cursor less than LOADING_REDRAW_S after the last redraw."""
        active = self.main.query_one("#views", TabbedContent).active
        flt = self.event_filter
        play = self.playback
        key = (play.cursor, active, play.mode, play.speed, self.child_status,
               flt and (flt.query, flt.scanned, len(flt.rows)))
        counts = (len(model), self.feed.loaded)
        now = time.monotonic()
        held = clock and not self.feed.loaded and now - self._drawn_at < LOADING_REDRAW_S
        if (key == self._shown or held) and not force and self._state is not None:
            if counts != self._counts or held:
                self._counts = counts
                self._show_header(model, self._state)
            return
        self._drawn_at = now
        state = model.state_at(play.cursor)
        self._state = state
        self._lints = lints(state, model.site, self.cursor_ns)
        self._shown, self._counts = key, counts
        self._show_header(model, state)
        self._show_banner(model, state)
        self._show_health(model, state)
        self._show_active_view(active, model, state)

    def _show_header(self, model: Model, state: TraceState) -> None:
        mode = self.main.query_one("#hdr-mode", Label)
        play = self.playback
        if play.mode is Mode.REPLAY:
            mode_text = f" REPLAY {speed_label(play.speed)} "
        elif play.mode is Mode.LIVE and model.state.ended:
            mode_text = " LIVE (ended) "   # the traced app finished its trace
        else:
            mode_text = f" {play.mode.name} "
        mode.update(mode_text)
        if not mode.has_class(f"mode-{play.mode.value}"):   # the mode changed
            was_live = mode.has_class(f"mode-{Mode.LIVE.value}")
            mode.set_classes(f"mode-{play.mode.value}")
            if was_live != (play.mode is Mode.LIVE):
                # +/- only in the Footer outside LIVE; redrawing the Footer when they stay
                # (a replay paused by a seek) made that key 50 ms slower
                self.refresh_bindings()
        wide = self.main.size.width >= WIDE
        threshold = model.threshold_ns / 1e6
        warnings = len(self._lints)
        # Most important first; what does not fit is left out whole, never cut.
        parts = [
            self.child_status or "",
            f"{seconds(self.cursor_ns)} / {seconds(model.duration_ns)}",
            (f"⚠ {warnings} warning{'s' if warnings != 1 else ''}" if wide else f"⚠ {warnings}")
            if warnings else "",
            f"{'events' if wide else 'ev'} {play.cursor:,}/{len(model):,}",
            (f"dropped {state.dropped:,}" if wide else f"drop {state.dropped:,}")
            if state.dropped or wide else "",
            f"threshold {threshold:g} ms" if wide else f"thr {threshold:g}ms",
        ]
        if state.runtime != "reactor":
            parts.append(state.runtime)
        parts = [p for p in parts if p]
        # the header's three labels each have one cell of padding either side
        room = self.main.size.width - len(self._trace_label) - len(mode_text) - 6
        while len(parts) > 1 and len(" │ ".join(parts)) > room:
            parts.pop()
        self.main.query_one("#hdr-info", Label).update(Text(" │ ".join(parts)))
        self._use_runtime_words(state.runtime)

    def _use_runtime_words(self, runtime: str) -> None:
        """The Deferreds tab is the Tasks tab where the runtime is asyncio."""
        tab = self.main.query_one("#views", TabbedContent).get_tab("deferreds")
        word = pending_word(runtime)
        if str(tab.label) != word:
            tab.label = word

    def _show_banner(self, model: Model, state: TraceState) -> None:
        """While a stall lasts: how long so far and the user's line it is stuck on (from the
        latest stall sample).  For BANNER_HOLD_NS after one ends: how long it lasted.  A live
        feed often brings a short stall's start and end in one read, so without the hold
        those stalls would never show at all."""
        banner = self.main.query_one("#banner", Static)
        cursor_ns = self.cursor_ns
        blocked = self._blocked_now(model, state)
        last = state.stalls[-1] if state.stalls else None
        if blocked is not None:
            text = f" BLOCKED {blocked[0] / 1e6:,.0f} ms in {blocked[1]}"
        elif last is not None and 0 <= cursor_ns - last.call.t_ns - last.call.dur_ns \
                < BANNER_HOLD_NS:
            ago_s = (cursor_ns - last.call.t_ns - last.call.dur_ns) / 1e9
            text = (f" BLOCKED {last.call.dur_ns / 1e6:,.0f} ms in "
                    f"{culprit(stall_culprit(last, model.site))}")
            ended = f", ended {ago_s:.1f} s ago"
            if len(text) + len(ended) <= self.main.size.width:   # said whole or not at all
                text += ended
        else:
            text = ""
        # The row stays when there is nothing to say: coming and going, it moved every widget
        # under it, which repainted the whole screen at a key and made the dashboard jump as
        # the cursor passed stalls.
        if text != self._banner_text:
            self._banner_text = text
            banner.update(Text(text), layout=False)
            banner.set_class(bool(text), "-blocked")

    def _blocked_now(self, model: Model, state: TraceState) -> tuple[int, str] | None:
        """While a stall lasts at the cursor: for how long so far (ns), and the user's line it
        is stuck on (from the latest stall sample), else the call's own site."""
        running = state.running
        if running is None:
            return None
        frame = user_frame(running.stack)
        stuck = culprit(frame_site(frame)) if frame else where(model.site(running.site))
        return max(running.blocked_ns, self.cursor_ns - running.since_ns), stuck

    def _show_health(self, model: Model, state: TraceState) -> None:
        blocks = [s.call.t_ns for s in state.stalls]
        self.main.query_one(HealthStrip).show(model.state.loop, model.state.stalls, blocks,
                                              self.cursor_ns, model.duration_ns)

    def _show_processes(self) -> None:
        """The lanes of a folder's processes, at the cursor's moment on the run's timeline."""
        feed = self.feed
        if not isinstance(feed, FolderFeed):
            return
        processes = feed.processes()
        headers = {os.path.basename(f.path): f.model.header for f in processes if f.model}
        lanes = []
        for process in processes:
            model = process.model
            if model is None:
                continue
            offset = feed.start_ns(process)
            with process.lock:
                state = model.state
                stalls = tuple((offset + s.call.t_ns, offset + s.call.t_ns + s.call.dur_ns)
                               for s in state.stalls)
                running = None if state.running is None else offset + state.running.since_ns
                end = offset + model.duration_ns
            lanes.append(Lane(int(model.header.get("pid", 0)),
                              program_of(model.header, headers.get(str(model.header.get("parent")))),
                              offset, end, stalls, process is feed.selected, running))
        cursor = self.cursor_ns + (feed.start_ns(feed.selected) if feed.selected else 0)
        self.main.query_one(ProcessLanes).show(lanes, cursor)
        self._label_process()

    def _label_process(self) -> None:
        """The header names the folder and the process shown."""
        feed = self.feed
        if isinstance(feed, FolderFeed) and feed.selected is not None and \
                feed.selected.model is not None:
            pid = feed.selected.model.header.get("pid")
            several = len(feed.processes()) > 1
            label = clean(f"{self._title} pid {pid}" if several else self._title, 40)
            if label != self._trace_label:
                self._trace_label = label
                self.main.query_one("#hdr-name", Label).update(Text(label))

    def action_next_process(self, delta: int) -> None:
        """Show the next (``delta`` 1) or previous (-1) process of a folder, at the same
        moment of the run."""
        feed = self.feed
        processes = feed.processes() if isinstance(feed, FolderFeed) else []
        if not isinstance(feed, FolderFeed) or feed.selected is None or len(processes) < 2:
            self.notify("This trace has one process.", timeout=3)
            return
        moment = feed.start_ns(feed.selected) + self.cursor_ns
        chosen = processes[(processes.index(feed.selected) + delta) % len(processes)]
        feed.select(chosen)
        model = chosen.model
        if model is not None:
            with chosen.lock:
                self.playback.carry(model, moment - feed.start_ns(chosen))
        self._shown = None
        self.refresh_view(force=True)
        self._show_processes()

    def _show_active_view(self, active: str, model: Model, state: TraceState) -> None:
        cursor_ns = self.cursor_ns
        rows = {
            "blocking": lambda: views.blocking_rows(state, model),
            "callbacks": lambda: views.callback_rows(state, model),
            "descriptors": lambda: views.descriptor_rows(state, cursor_ns),
            "threads": lambda: views.thread_rows(state, model, cursor_ns),
            "warnings": lambda: views.warning_rows(self._lints),
        }.get(active)
        if rows is not None:
            table = self.main.query_one(f"#{active}-table", Table)
            table.replace_rows(rows())
            obj = table.row_object(table.highlighted_key)
            if obj is None:
                empty = self._empty_text(active, model, state) if not table.row_count else None
                self.main.query_one("#detail-text", Static).update(
                    Text(empty, style="dim") if empty else PLACEHOLDER)
            else:
                self._show_detail(obj)
        elif active == "deferreds":
            self.main.query_one(DeferredTree).show(state, model, cursor_ns)
        elif active == "events":
            self._show_events(model)

    def _empty_text(self, active: str, model: Model, state: TraceState) -> str:
        """What the detail pane says under an empty table.  A stall still going on is in
        the banner, not yet in the Blocking table (a row is a call that ended)."""
        at = seconds(self.cursor_ns)
        blocked = self._blocked_now(model, state) if active == "blocking" else None
        if blocked is not None:
            return (f"At {at} the loop is blocked, for {blocked[0] / 1e6:,.0f} ms so far, in "
                    f"{blocked[1]}: the stall is listed here when the call ends.")
        return f"Nothing yet at {at}: {EMPTY[active]}."

    def _show_events(self, model: Model) -> None:
        log = self.main.query_one(EventLog)
        status = self.main.query_one("#filter-status", Label)
        flt = self.event_filter
        if flt is None:
            log.set_rows(range(len(model)))
            status.update(f"{len(model):,} events")
        else:
            self._extend_filter(model)
            log.set_rows(flt.rows)
            scanning = f", scanning {flt.scanned * 100 // max(len(model), 1)}%" \
                if flt.scanned < len(model) else ""
            status.update(f"{len(flt.rows):,} match{'es' if len(flt.rows) != 1 else ''}"
                          f"{scanning}")
        cursor = self.playback.cursor
        log.show_index(cursor - 1 if cursor else None)
        if log.has_focus and log.selected_row is not None:
            self._show_event_detail(log.rows[log.selected_row])

    def _show_detail(self, obj: object) -> None:
        """The detail pane on a row's object."""
        model = self.feed.model
        if model is None:
            return
        try:
            pane = self.main.query_one("#detail-text", Static)
        except NoMatches:  # a highlight queued as the app closed, after its widgets went
            return
        runtime = self._state.runtime if self._state is not None else "reactor"
        pane.update(detail.describe(obj, model, self.cursor_ns, runtime))

    def _show_event_detail(self, index: int) -> None:
        model = self.feed.model
        if model is not None:
            runtime = self._state.runtime if self._state is not None else "reactor"
            self.main.query_one("#detail-text", Static).update(
                detail.event(index, model.event(index), model, runtime))

    def _show_feed_status(self) -> None:
        feed = self.feed
        if feed.model is None and feed.error is None:
            what = "the trace to start" if os.path.exists(feed.path) else \
                f"{clean(feed.path, 60)} to appear"
            self.main.query_one("#hdr-info", Label).update(f"waiting for {what}…")
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
        active = self.main.query_one("#views", TabbedContent).active
        if active not in TABLE_VIEWS:
            self.main.query_one("#detail-text", Static).update(PLACEHOLDER)
        pane = self.main.query_one(f"#{active}", TabPane)
        focused = self.main.focused
        if focused is None or pane not in focused.ancestors:   # `/` focuses the filter itself
            self._focus_view(active)
        self.refresh_view()

    def _focus_view(self, name: str) -> None:
        """Focus what view ``name`` shows, so ↑/↓ move in it at once."""
        self._focus(self.main.query_one(VIEW_WIDGETS[name]))

    def _focus(self, widget: Widget) -> None:
        """Focus ``widget`` now.  ``Widget.focus()`` waits for the message queue, so keys
        typed right after ``/`` or Enter went to the widget that had the focus before: a
        query's first letters were lost, and ``2`` or ``q`` after Enter was typed into the
        filter."""
        self.main.set_focus(widget)

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if isinstance(table, Table):
            obj = table.row_object(event.row_key.value)
            if obj is not None:
                self._show_detail(obj)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a stall or a thread job moves the cursor to it."""
        table = event.data_table
        if not isinstance(table, Table):
            return
        obj = table.row_object(event.row_key.value)
        if isinstance(obj, Stall):
            self._navigate(lambda model: self.playback.seek(model, obj.call.index + 1))
        elif isinstance(obj, ThreadJob):
            self._navigate(lambda model: self.playback.seek_time(model, obj.submitted_ns))

    @on(Tree.NodeHighlighted)
    def _node_highlighted(self, event: Tree.NodeHighlighted[TreeData]) -> None:
        if event.node.data is not None:
            self._show_detail(event.node.data)

    @on(EventLog.Selected)
    def _event_selected(self, event: EventLog.Selected) -> None:
        self._navigate(lambda model: self.playback.seek(model, event.index + 1))
        self._show_event_detail(event.index)

    def _describe_event(self, index: int) -> Text:
        model = self.feed.model
        if model is None:
            return Text()
        event: Event = model.event(index)
        return event_line(model, event, model.time_ns(index), model.threshold_ns)

    # -- the filter -------------------------------------------------------------
    def set_filter(self, query: str) -> None:
        """Show the Events view, with only the events matching ``query`` ('' = all)."""
        self.main.query_one("#views", TabbedContent).active = "events"
        self._apply_filter(query)

    def _apply_filter(self, query: str) -> None:
        """Filter the Events view by ``query``, in whatever view the user is now: Enter and
        ``2`` typed at once apply the query and then show Callbacks, not Events again."""
        self.main.query_one("#filter", Input).value = query
        self.event_filter = EventFilter(query) if query.strip() else None
        self.refresh_view(force=True)

    def _extend_filter(self, model: Model) -> None:
        """Scan events the filter has not seen yet, in a thread."""
        flt = self.event_filter
        if flt is not None and not flt.busy and flt.scanned < len(model):
            flt.busy = True
            self._scan_filter(flt, model, len(model))

    @work(thread=True, exclusive=True, group="filter")
    def _scan_filter(self, flt: EventFilter, model: Model, stop: int) -> None:
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
        self._navigate(lambda model: self.playback.play_pause(model, self.feed.loaded))

    def set_speed(self, speed: float) -> None:
        self.playback.set_speed(speed)
        self.refresh_view()

    def action_faster(self) -> None:
        self.playback.faster()
        self.refresh_view()

    def action_slower(self) -> None:
        self.playback.slower()
        self.refresh_view()

    def action_pause(self) -> None:
        self.playback.pause()
        self.refresh_view()

    def action_step(self, delta: int) -> None:
        self._navigate(lambda model: self.playback.step(model, delta))

    def action_jump(self, direction: int) -> None:
        self._navigate(lambda model: self.playback.jump(model, direction))

    def action_start(self) -> None:
        self._navigate(lambda model: self.playback.seek(model, 0))

    def action_end(self) -> None:
        self._navigate(lambda model: self.playback.seek(model, len(model)))

    def action_follow(self) -> None:
        """Jump to the end and stay there as the file grows."""
        def follow(model: Model) -> None:
            if not self.playback.follow(model):
                self.notify("This trace is a saved file: nothing more will come. Use "
                            "`loopscope live` to follow a file that is being written.",
                            timeout=5)
        self._navigate(follow)

    def action_next_blocking(self) -> None:
        self._go_to_stall(self.playback.next_blocking, "No stall after the cursor.")

    def action_previous_blocking(self) -> None:
        self._go_to_stall(self.playback.previous_blocking, "No stall before the cursor.")

    def _go_to_stall(self, find: Callable[[Model, list[int]], int | None],
                     none_found: str) -> None:
        """Cursor just after the stall ``find`` picks; show it selected in Blocking."""
        model = self.feed.model
        if model is None:
            return
        with self.feed.lock:
            stalls = model.state.stalls   # in time order: so are their positions
            position = find(model, [s.call.index + 1 for s in stalls])
        if position is None:
            self.notify(none_found, timeout=3)
            return
        self.action_show_view("blocking")
        self.refresh_view()
        number = next(i for i, s in enumerate(stalls) if s.call.index + 1 == position)
        self.main.query_one("#blocking-table", Table).select_key(views.stall_key(number))

    def action_goto(self) -> None:
        def go(position: tuple[str, int] | None) -> None:
            if position is None:
                return
            what, value = position
            if what == "event":
                self._navigate(lambda model: self.playback.seek(model, value + 1))
            else:
                self._navigate(lambda model: self.playback.seek_time(model, value))

        self.push_screen(GoToScreen(), go)

    def action_filter(self) -> None:
        self.main.query_one("#views", TabbedContent).active = "events"
        self._focus(self.main.query_one("#filter", Input))

    def action_submit_filter(self) -> None:
        """Apply the query and leave the box.  The focus moves at once, so keys typed after
        Enter are keys again; the query is read once the box has taken the characters typed
        before Enter (they wait in its queue, ahead of this call)."""
        box = self.main.query_one("#filter", Input)
        self._focus(self.main.query_one(EventLog))
        box.call_later(lambda: self._apply_filter(box.value))

    def action_clear_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        self._focus(self.main.query_one(EventLog))
        box.call_later(self._apply_filter, "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which of the dashboard's keys apply now (False also hides one from the Footer)."""
        if action not in OWN_ACTIONS:
            return True
        if isinstance(self.screen, ModalScreen):
            return False                # help, go-to and the palette have keys of their own
        typing = isinstance(self.screen.focused, Input)
        if action == "submit_filter":
            return typing
        if action == "clear_filter":
            active = self.main.query_one("#views", TabbedContent).active
            return typing or (self.event_filter is not None and active == "events")
        if typing:
            return False                # the key is a character of the query
        if action in ("faster", "slower"):
            return self.playback.mode is not Mode.LIVE   # LIVE has no speed
        if action == "toggle_output":
            return self.child is not None               # only run --tui has an app's output
        if action == "next_process":
            return isinstance(self.feed, FolderFeed)    # a trace folder has processes
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_listing()))

    def action_show_view(self, name: str) -> None:
        self.main.query_one("#views", TabbedContent).active = name
        self._focus_view(name)

    def action_toggle_detail(self) -> None:
        pane = self.main.query_one("#detail")
        pane.display = not pane.display

    def _active_table(self) -> Table | None:
        active = self.main.query_one("#views", TabbedContent).active
        return self.main.query_one(f"#{active}-table", Table) if active in TABLE_VIEWS else None

    def action_sort_next(self) -> None:
        table = self._active_table()
        if table is not None:
            table.sort_next()

    def action_reverse_sort(self) -> None:
        table = self._active_table()
        if table is not None:
            table.reverse_sort()

    def palette_commands(self) -> list[Command]:
        """(title, help, callback) for the command palette."""
        commands: list[Command] = [
            (f"Speed {speed_label(s)}", "Replay at this speed", partial(self.set_speed, s))
            for s in SPEEDS
        ]
        commands += [(f"View: {name.title()}", "Show this view",
                      partial(self.action_show_view, name)) for name in VIEWS]
        commands += [
            ("Pause", "Hold the cursor where it is", self.action_pause),
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
        gc.unfreeze()     # what was frozen at the start may be garbage now

    def exit_code_for_cli(self) -> int:
        """The child's own exit status when it ended by itself, else 0."""
        if self.child is None or self.child.terminated_by_us:
            return 0
        code = self.child.returncode
        return 0 if code is None else code
