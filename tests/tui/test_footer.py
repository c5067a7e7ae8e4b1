"""The Footer keeps its key widgets while the keys it shows stay the same, and the App keeps
its start-up objects out of Python's collections while it runs."""

from __future__ import annotations

import asyncio
import gc

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui.app import LoopscopeApp
from tui_support import ROOT, loaded, replay_app, until

DEMO_TRACE = ROOT / "traces" / "demo.jsonl"


def footer_keys(app: LoopscopeApp) -> list[FooterKey]:
    return list(app.query_one(Footer).query(FooterKey))


def test_switching_views_keeps_the_footer_and_new_keys_rebuild_it() -> None:
    async def main() -> None:
        app = replay_app(DEMO_TRACE)
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            await pilot.pause()
            before = footer_keys(app)
            assert before and "Filter" in [key.description for key in before]
            # Not the Deferreds view: its tree binds space too, which moves space first.
            for view in "23471":
                await pilot.press(view)
                await pilot.pause()
                assert footer_keys(app) == before      # the very same widgets
            await pilot.press("slash")                 # typing a query: its keys appear
            await until(pilot, lambda: "Apply filter" in
                        [key.description for key in footer_keys(app)])
            await pilot.press("escape")
            await until(pilot, lambda: "Apply filter" not in
                        [key.description for key in footer_keys(app)])
    asyncio.run(main())


def test_the_app_freezes_what_it_made_at_start_until_it_ends() -> None:
    async def main() -> None:
        app = replay_app(DEMO_TRACE)
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            assert gc.get_freeze_count() > 10_000
        assert gc.get_freeze_count() == 0
    asyncio.run(main())
