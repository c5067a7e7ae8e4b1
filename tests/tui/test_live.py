"""Live mode: the dashboard follows a file while the test writes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from tui.app import LoopscopeApp
from tui.feed import Feed
from tui.playback import Mode
from tui_support import MS, TraceWriter, until


def live_app(path: Path, wait: bool = False) -> LoopscopeApp:
    app = LoopscopeApp(Feed(str(path), follow=True, wait=wait), mode=Mode.LIVE)
    app.animation_level = "none"
    return app


def test_follow_picks_up_appended_events_and_shows_a_stall_while_it_lasts(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"

    async def main() -> None:
        app = live_app(path, wait=True)          # the file does not exist yet
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "to appear…" in str(app.query_one("#hdr-info").render()))
            assert app.feed.model is None
            assert str(app.query_one("#hdr-info").render()).startswith("waiting for ")
            w = TraceWriter(path)
            w.event(0, "reactor", state="running")
            slow = w.site(1000, "app.Slow.dataReceived", "/app/app.py", 31)
            await until(pilot, lambda: app.feed.model is not None and app.playback.cursor == 2)
            banner = app.query_one("#banner", Static)
            assert app.playback.mode is Mode.LIVE and not banner.has_class("-blocked")
            assert str(banner.render()).strip() == ""      # its row stays, empty
            views_at = app.query_one("#views").region

            for blocked in (50, 150, 250):      # the watchdog's samples while stuck
                w.event((1000 + blocked) * MS, "stall", site=slow, kind="read", depth=0,
                        since=1000 * MS, blocked=blocked * MS,
                        stack=[["/app/app.py", 33, "Slow.dataReceived"]])
            await until(pilot, lambda: app.playback.cursor == 5)
            assert banner.has_class("-blocked")
            assert app.query_one("#views").region == views_at   # nothing under it moved
            assert str(banner.render()).strip() == \
                "BLOCKED 250 ms in Slow.dataReceived (app.py:33)"   # the sampled line
            assert "LIVE" in str(app.query_one("#hdr-mode").render())

            w.event(1300 * MS, "call", kind="read", site=slow, dur=300 * MS, depth=0, fd=7)
            await until(pilot, lambda: app.playback.cursor == 6)
            assert app.feed.model.state.stalls[0].call.dur_ns == 300 * MS
            # It stays a moment, with its length, so a stall a feed brings whole shows too.
            assert str(banner.render()).strip() == \
                "BLOCKED 300 ms in Slow.dataReceived (app.py:33), ended 0.0 s ago"
            w.event(3400 * MS, "mark", label="two seconds later")
            await until(pilot, lambda: app.playback.cursor == 7)
            assert not banner.has_class("-blocked") and str(banner.render()).strip() == ""

            await pilot.press("home")            # browsing holds the cursor...
            w.event(3500 * MS, "mark", label="later")
            await until(pilot, lambda: len(app.feed.model) == 8)
            assert app.playback.cursor == 0 and app.playback.mode is Mode.PAUSED
            await pilot.press("f")               # ...and f follows the file again
            assert app.playback.mode is Mode.LIVE and app.playback.cursor == 8
            w.close()
    asyncio.run(main())


def test_a_stall_the_feed_brings_whole_still_shows_in_the_banner(tmp_path: Path) -> None:
    """A short stall often reaches a live dashboard in one read, its start and end together:
    no tick ever sees it running, and the banner must show it all the same."""
    path = tmp_path / "live.jsonl"

    async def main() -> None:
        w = TraceWriter(path)
        crunch = w.site(0, "app.crunch", "/app/app.py", 8)
        w.event(100 * MS, "loop", dt=100 * MS, it=5, busy=MS, idle=99 * MS, calls=1,
                lag_max=0, lag_mean=0)
        app = live_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.feed.model is not None and app.playback.cursor == 2)
            banner = app.query_one("#banner", Static)
            assert not banner.has_class("-blocked")
            w.event(170 * MS, "stall", site=crunch, kind="timer", depth=0, since=110 * MS,
                    blocked=60 * MS, stack=[["/app/app.py", 9, "crunch"]])
            w.event(230 * MS, "call", kind="timer", site=crunch, dur=120 * MS, depth=0, timer=1,
                    lag=0)
            await until(pilot, lambda: app.playback.cursor == 4)
            assert banner.has_class("-blocked")
            assert str(banner.render()).strip() == \
                "BLOCKED 120 ms in crunch (app.py:9), ended 0.0 s ago"
            w.close()
    asyncio.run(main())
