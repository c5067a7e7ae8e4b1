"""Pilot tests: every key and view of the dashboard on a known trace."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from textual.command import CommandList
from textual.widgets import Input, TabbedContent, TabPane

from tui.app import LoopscopeApp
from tui.playback import SPEEDS, Mode
from tui.eventlog import EventLog
from tui.keys import KEYS
from tui.screens import GoToScreen, HelpScreen
from tui.tables import Table
from tui_support import MS, ROOT, loaded, replay_app, until

SIZE = (160, 48)
EVIL_FN = "[bold]evil[/bold][@click=app.quit]x[/]"   # a site name in the fixed trace
DEMO_TRACE = ROOT / "traces" / "demo.jsonl"   # recorded from tracer/demo.py (traces/README.md)


def demo_line(text: str) -> int:
    """The line of tracer/demo.py that holds ``text`` (where the demo blocks)."""
    lines = (ROOT / "tracer" / "demo.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


SNAPSHOT_LINE = demo_line("time.sleep(0.25)")     # in write_snapshot_synchronously


def run(path: Path, scenario, size: tuple[int, int] = SIZE) -> None:
    """Run ``scenario(pilot, app)`` against a replay of ``path`` once loaded."""
    async def main() -> None:
        app = replay_app(path)
        async with app.run_test(size=size) as pilot:
            await loaded(pilot)
            await scenario(pilot, app)
    asyncio.run(main())


def first_row(app: LoopscopeApp, table_id: str) -> list[str]:
    table = app.query_one(f"#{table_id}", Table)
    return [str(cell) for cell in table.get_row_at(0)]


def test_blocking_view_of_the_demo_trace_starts_with_its_longest_stall() -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        assert app.query_one("#views", TabbedContent).active == "blocking"
        table = app.query_one("#blocking-table", Table)
        stalls = app.feed.model.state.stalls
        assert table.row_count == len(stalls) == 6        # nested blocking calls are no rows
        assert len(app.feed.model.state.blocking) == 8
        longest = max(stalls, key=lambda s: s.call.dur_ns)
        assert table.row_object(table.highlighted_key) == longest
        ms, where, fn, kind, _ = first_row(app, "blocking-table")
        assert where == f"write_snapshot_synchronously (demo.py:{SNAPSHOT_LINE})"  # stuck line
        assert fn == "KeyValueServer.dataReceived" and kind == "read"   # the user's class
        assert float(ms) == round(longest.call.dur_ns / 1e6, 1)
        detail = str(app.query_one("#detail-text").render())
        assert f"stuck in write_snapshot_synchronously (demo.py:{SNAPSHOT_LINE})" in detail
        assert f"▶ write_snapshot_synchronously  demo.py:{SNAPSHOT_LINE}" in detail  # user's
        assert "inherited, defined at reactor/basic.py:" in detail
        nested = next(s for s in stalls if s.chain)         # the STATS reply's parse_stats
        table.select_key(f"b{stalls.index(nested)}")
        await pilot.pause()
        detail = str(app.query_one("#detail-text").render())
        assert "nested in it" in detail and "__main__.parse_stats" in detail
    run(DEMO_TRACE, scenario)


def test_step_home_end_and_go_to_on_the_demo_trace() -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        model = app.feed.model
        total = len(model)
        await pilot.press("home")
        assert app.playback.cursor == 0 and app.playback.mode is Mode.PAUSED
        await pilot.press("right", "right", "right")
        assert app.playback.cursor == 3
        await pilot.press("left")
        assert app.playback.cursor == 2
        await pilot.press("end")
        assert app.playback.cursor == total
        await pilot.press("home", "shift+right")
        assert app.playback.cursor == model.index_at(1_000 * MS)
        await pilot.press("end")
        t = model.time_ns(total - 1)
        await pilot.press("shift+left")
        assert app.playback.cursor == model.index_at(t - 1_000 * MS)
        await pilot.press("g", "x", "enter")
        assert isinstance(app.screen, GoToScreen)      # "x" is refused, still asking
        await pilot.press("backspace", *"1.3s", "enter")
        assert not isinstance(app.screen, GoToScreen)
        assert app.playback.cursor == model.index_at(1_300 * MS)
        await pilot.press("g", "escape")               # escape leaves the cursor alone
        assert not isinstance(app.screen, GoToScreen)
        assert app.playback.cursor == model.index_at(1_300 * MS)
        header = str(app.query_one("#hdr-info").render())
        assert f"events {app.playback.cursor:,}/{total:,}" in header
    run(DEMO_TRACE, scenario)


def test_next_previous_and_enter_on_stalls(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        stalls = app.feed.model.state.stalls
        await pilot.press("home", "3")                 # start on another view
        await pilot.press("n")
        assert app.playback.cursor == stalls[0].call.index + 1
        assert app.query_one("#views", TabbedContent).active == "blocking"
        table = app.query_one("#blocking-table", Table)
        assert table.row_object(table.highlighted_key) == stalls[0]
        await pilot.press("n", "n")
        assert app.playback.cursor == stalls[2].call.index + 1
        assert table.row_object(table.highlighted_key) == stalls[2]
        await pilot.press("n")                          # none later: stays
        assert app.playback.cursor == stalls[2].call.index + 1
        await pilot.press("N")
        assert app.playback.cursor == stalls[1].call.index + 1
        assert table.row_object(table.highlighted_key) == stalls[1]
        await pilot.press("end")                       # every row; the selection stays
        table.focus()
        await pilot.press("enter")                     # enter: the cursor goes to that row
        assert table.row_object(table.highlighted_key) == stalls[1]
        assert app.playback.cursor == stalls[1].call.index + 1
    run(fixed_trace, scenario)


def test_play_pause_speeds_and_follow(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        await pilot.press("home")
        assert app.playback.mode is Mode.PAUSED and math.isinf(app.playback.speed)
        await pilot.press("minus")
        assert app.playback.speed == 100.0
        await pilot.press("minus", "minus", "minus")
        assert app.playback.speed == 1.0
        # At 0.1x the 2.5 s trace lasts 25 s: it is still replaying however slow the machine.
        await pilot.press("home", "minus", "minus", "minus")   # no lower than 0.1x
        assert app.playback.speed == SPEEDS[0] == 0.1
        assert app.playback.mode is Mode.REPLAY
        assert "REPLAY 0.1x" in str(app.query_one("#hdr-mode").render())
        before = app.playback.play_ns
        await until(pilot, lambda: app.playback.play_ns > before)   # the cursor's clock moves
        await pilot.press("space")
        assert app.playback.mode is Mode.PAUSED
        held = app.playback.cursor
        await pilot.pause(0.3)
        assert app.playback.cursor == held and "PAUSED" in str(app.query_one("#hdr-mode").render())
        await pilot.press("home", "space")
        assert app.playback.mode is Mode.REPLAY
        await pilot.press("plus")
        assert app.playback.speed == 0.5
        await pilot.press("plus", "plus", "plus", "plus", "plus")
        assert math.isinf(app.playback.speed)
        await until(pilot, lambda: app.playback.mode is Mode.PAUSED)
        assert app.playback.cursor == len(app.feed.model)       # max runs to the end, then pauses
        await pilot.press("home", "f")                 # follow: to the end (a saved file)
        assert app.playback.cursor == len(app.feed.model) and app.playback.mode is Mode.PAUSED
    run(fixed_trace, scenario)


def test_number_keys_show_every_view(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        tabs = app.query_one("#views", TabbedContent)
        await pilot.press("2")
        assert tabs.active == "callbacks"
        assert first_row(app, "callbacks-table")[0] == "Slow.dataReceived"  # by total, desc
        await pilot.press("4")
        assert tabs.active == "descriptors"
        fds = app.query_one("#descriptors-table", Table)
        assert [str(fds.get_row_at(i)[0]).strip() for i in range(fds.row_count)] == ["6", "7"]
        assert str(fds.get_row_at(1)[3]) == "127.0.0.1:50123"
        await pilot.press("5")
        assert tabs.active == "deferreds"
        tree = app.query_one("#deferred-tree")
        pending, failures = tree.root.children
        assert str(pending.label) == "pending (3)"
        chain = [n for n in pending.children if n.data.id == 3][0]
        assert [c.data.id for c in chain.children] == [4]   # 3 waits on 4
        assert str(failures.label) == "unhandled failures (1)"
        tree.focus()
        await pilot.press("down", "down", "down", "down")  # pending, #2, #3, #4 (under #3)
        assert tree.cursor_node.data.id == 4
        await pilot.press("left")                      # a new state rebuilds the tree...
        await pilot.pause()
        assert app.playback.cursor == len(app.feed.model) - 1
        assert tree.cursor_node.data.id == 4           # ...and keeps the highlighted one
        await pilot.press("6")
        assert tabs.active == "threads"
        job = first_row(app, "threads-table")
        assert job[1:] == ["threads_demo.slow_io", "done", "1.0", "300.0"]
        await pilot.press("3")
        assert tabs.active == "events"
        await pilot.press("1")
        assert tabs.active == "blocking"
    run(fixed_trace, scenario)


def header_labels(table: Table) -> list[str]:
    return [str(c.label) for c in table.ordered_columns]


def test_every_table_sorts_by_any_column_with_an_indicator(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        await pilot.press("2")
        table = app.query_one("#callbacks-table", Table)
        assert "total ms ▼" in header_labels(table)
        await pilot.press("s")                          # total (default) -> mean
        assert (table.sort_column, table.sort_reverse) == ("mean", True)
        assert "mean ms ▼" in header_labels(table) and "total ms" in header_labels(table)
        await pilot.press("r")
        assert not table.sort_reverse and "mean ms ▲" in header_labels(table)
        assert first_row(app, "callbacks-table")[0] == EVIL_FN          # 1.0 ms, the least
        await pilot.click(table, offset=(2, 0))         # the "callback" header: a-z
        assert (table.sort_column, table.sort_reverse) == ("fn", False)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names == sorted(names, key=str.lower)
        calls_x = sum(c.get_render_width(table) for c in table.ordered_columns[:2]) + 1
        await pilot.click(table, offset=(calls_x, 0))  # the "calls" header: most first
        assert (table.sort_column, table.sort_reverse) == ("count", True)
        assert first_row(app, "callbacks-table")[0] == "Port.doRead"  # 2 calls
        await pilot.click(table, offset=(calls_x, 0))  # again: reversed
        assert not table.sort_reverse

        await pilot.press("4")                          # another table, its own sort
        fds = app.query_one("#descriptors-table", Table)
        assert [str(fds.get_row_at(i)[0]) for i in range(fds.row_count)] == ["6", "7"]
        await pilot.press("r")
        assert [str(fds.get_row_at(i)[0]) for i in range(fds.row_count)] == ["7", "6"]
        assert "fd ▼" in header_labels(fds)
        await pilot.press("1", "s")                     # Blocking: by where it stalled, a-z
        blocking = app.query_one("#blocking-table", Table)
        assert header_labels(blocking)[1] == "stalled in ▲"
        wheres = [str(blocking.get_row_at(i)[1]) for i in range(blocking.row_count)]
        assert wheres == sorted(wheres, key=str.lower)
    run(fixed_trace, scenario)


def test_a_table_has_the_widths_of_its_new_rows_before_it_is_drawn(fixed_trace: Path) -> None:
    """The views replace a table's rows from the app's handlers, not the table's own: its
    columns must fit the new rows at once, not on the table's next idle (until which a
    busy machine drew the bare labels' widths, the cells cut to them)."""
    async def scenario(pilot, app: LoopscopeApp) -> None:
        table = app.query_one("#blocking-table", Table)
        app.refresh_view(force=True)                # replaces every row, as a cursor move does
        widths = [c.content_width for c in table.ordered_columns]
        cells = [[table.get_row_at(i)[j].cell_len for i in range(table.row_count)]
                 for j in range(len(widths))]
        assert table.row_count > 0
        assert widths == [max(len(str(c.label)), *col)
                          for c, col in zip(table.ordered_columns, cells, strict=True)]
        assert widths[1] > len("stalled in")        # the text column is not cut to its label
    run(fixed_trace, scenario)


def test_events_filter_and_selecting_an_event_moves_the_cursor(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        model = app.feed.model
        log = app.query_one(EventLog)
        await pilot.press("slash")
        assert app.query_one("#views", TabbedContent).active == "events"
        assert app.query_one("#filter", Input).has_focus
        await pilot.press(*"kind:call fd:7", "enter")
        await until(pilot, lambda: app.event_filter.scanned == len(model))
        await pilot.pause(0.15)
        assert [model.event(i)["ev"] for i in log.rows] == ["call"]
        assert model.event(log.rows[0])["dur"] == 250 * MS
        assert log.has_focus
        app.set_filter("site:parse")
        await until(pilot, lambda: app.event_filter.scanned == len(model))
        await pilot.pause(0.15)
        assert [model.event(i)["ev"] for i in log.rows] == ["dadd", "dcall"]
        app.set_filter("50123")
        await until(pilot, lambda: app.event_filter.scanned == len(model))
        await pilot.pause(0.15)
        assert [model.event(i)["ev"] for i in log.rows] == ["conn"]
        await pilot.press("escape")
        assert app.event_filter is None and list(log.rows) == list(range(len(model)))
        await pilot.press("home")
        log.focus()
        await pilot.press("down", "down")
        assert app.playback.cursor == 2 and log.selected_row == 1
        await pilot.press("up")
        assert app.playback.cursor == 1
        await pilot.click(EventLog, offset=(5, 4))
        assert app.playback.cursor == int(log.scroll_y) + 5
        assert "event #" in str(app.query_one("#detail-text").render())
    run(fixed_trace, scenario)


def test_help_detail_toggle_palette_and_q_quits(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = str(app.screen.query_one("#help-keys").render())
        for key in KEYS:
            assert key.description in listed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("d")
        assert not app.query_one("#detail").display
        await pilot.press("d")
        assert app.query_one("#detail").display
        await pilot.press("ctrl+p", *"speed 10x")     # the command palette
        await until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
        await pilot.press("enter")                     # the best hit: "Speed 10x"
        await until(pilot, lambda: app.playback.speed == 10.0)
        await pilot.press("q")
        assert not app.is_running
        assert app.return_code == 0
    run(fixed_trace, scenario)


def test_focus_follows_the_view_and_leaves_the_filter(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        assert app.focused is app.query_one("#blocking-table")      # not the tab strip
        for key, focused in (("2", "#callbacks-table"), ("3", "#eventlog"),
                             ("4", "#descriptors-table"), ("5", "#deferred-tree"),
                             ("6", "#threads-table"), ("1", "#blocking-table")):
            await pilot.press(key)
            assert app.focused is app.query_one(focused), key
        await pilot.press("slash", *"q 2", "enter")     # q and 2 typed, then Enter leaves
        assert app.query_one("#filter", Input).value == "q 2"
        assert app.focused is app.query_one(EventLog)
        await pilot.press("2")
        assert app.query_one("#views", TabbedContent).active == "callbacks"
        await pilot.press("slash", "escape", "q")       # escape leaves the box; q quits
        assert app.query_one("#filter", Input).value == ""
        assert not app.is_running
    run(fixed_trace, scenario)


def test_a_late_focus_notice_does_not_switch_the_view_back(fixed_trace: Path) -> None:
    """Enter then ``2`` typed at once: Enter gives the Events log the focus, ``2`` shows
    Callbacks and focuses its table, and the log's notice that it took the focus (Focus,
    then DescendantFocus, then TabPane.Focused, each a message) may arrive last.  In a real
    terminal it then switched the dashboard back to Events.  Pilot waits between keys, so
    the late notice is delivered here by hand, once the switch has settled."""
    async def scenario(pilot, app: LoopscopeApp) -> None:
        await pilot.press("slash", *"kind:call", "enter", "2")
        assert app.focused is app.query_one("#callbacks-table")
        events = app.query_one("#events", TabPane)
        events.post_message(TabPane.Focused(events))
        await pilot.pause()
        assert app.query_one("#views", TabbedContent).active == "callbacks"
    run(fixed_trace, scenario)


def test_speed_keys_are_hidden_in_live_mode(fixed_trace: Path) -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        assert app.check_action("faster", ()) and app.check_action("slower", ())
        app.playback.mode = Mode.LIVE
        assert not app.check_action("faster", ()) and not app.check_action("slower", ())
    run(fixed_trace, scenario)


def test_warnings_view_and_the_count_in_the_header() -> None:
    async def scenario(pilot, app: LoopscopeApp) -> None:
        await pilot.press("7")
        assert app.query_one("#views", TabbedContent).active == "warnings"
        table = app.query_one("#warnings-table", Table)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert table.row_count >= 3
        header = str(app.query_one("#hdr-info").render())
        assert f"⚠ {table.row_count} warnings" in header
        snapshots = [s.call.dur_ns / 1e6 for s in app.feed.model.state.stalls
                     if s.call.dur_ns > 200_000_000]
        sentence = (f"write_snapshot_synchronously (demo.py:{SNAPSHOT_LINE}) blocked the loop "
                    f"2 times, {sum(snapshots):,.0f} ms in all (longest {max(snapshots):,.0f} ms)")
        texts = [table.row_object(key).text for key in table.rows]
        assert sentence in texts
        count, shown = rows[texts.index(sentence)]
        assert count == "2" and sentence.startswith(shown.rstrip("…"))   # cut to fit at most
        assert app.focused is table
        detail = str(app.query_one("#detail-text").render())
        assert "Move the work to a thread" in detail
        await pilot.press("home")                  # nothing has happened yet: no warning
        assert table.row_count == 0 and "⚠" not in str(app.query_one("#hdr-info").render())
    run(DEMO_TRACE, scenario)
