"""Trace text is data: markup and escapes written by the traced app show
literally and do nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui.eventlog import EventLog
from tui.tables import Table
from tui_support import loaded, replay_app, until

EVIL = "[bold]evil[/bold][@click=app.quit]x[/]"


def test_markup_in_trace_text_is_shown_literally_and_clicking_it_does_nothing(
        fixed_trace: Path) -> None:
    async def main() -> None:
        app = replay_app(fixed_trace)
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            await pilot.press("2")
            table = app.query_one("#callbacks-table", Table)
            row = next(i for i in range(table.row_count)
                       if str(table.get_row_at(i)[0]) == EVIL)
            lines = [table.render_line(y).text for y in range(table.row_count + 1)]
            assert any(EVIL in line for line in lines)
            # Click right on the text that would be an app.quit link if parsed.
            await pilot.click(table, offset=(8, row + 1))
            await pilot.pause(0.2)
            assert app.is_running
            assert EVIL in str(app.query_one("#detail-text").render())

            app.set_filter("kind:mark")
            await until(pilot, lambda: app.event_filter.scanned == len(app.feed.model))
            await pilot.pause(0.15)
            log = app.query_one(EventLog)
            line = log.render_line(0).text
            assert "label=[red]not markup[/red]" in line
            assert "\x1b" not in line and "\x07" not in line
            await pilot.press("5")                           # the unhandled failure
            tree = app.query_one("#deferred-tree")
            failure = tree.root.children[1].children[0]
            assert "bad [bold]input[/bold] [@click=app.quit]quit[/]" in str(failure.label)
    asyncio.run(main())
