"""Measure the dashboard on a big trace (not a test: timings go in reports).

    python tests/tui/measure_big_trace.py [N_EVENTS]

Writes a synthetic N-event trace (default 1,000,000) to a temporary file,
opens it headless at 160x48 and prints: seconds until the first screen shows
events, seconds until the load finished, the slowest key pressed while it
loads and after (seeks, steps, views), and the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from tui_support import until, write_big_trace
from tui.app import LoopscopeApp
from tui.feed import Feed
from tui.playback import Mode


async def measure(path: Path) -> None:
    app = LoopscopeApp(Feed(str(path), follow=False), mode=Mode.REPLAY, speed=1.0)
    app.animation_level = "none"
    start = time.monotonic()
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: bool(app._counts and app._counts[0]), timeout=60)
        first = time.monotonic() - start
        while_loading = 0.0
        for key in ("2", "3", "1", "space", "space"):
            t = time.monotonic()
            await pilot.press(key)
            while_loading = max(while_loading, time.monotonic() - t)
        await until(pilot, lambda: app.feed.loaded, timeout=300)
        full = time.monotonic() - start
        app.playback.speed = float("inf")
        await until(pilot, lambda: app.playback.mode is Mode.PAUSED, timeout=60)
        keys = ["home", "n", "n", "right", "right", "shift+right", "g", *"20s", "enter",
                "end", "N", "left", "3", "down", "2", "1"]
        slowest = (0.0, "")
        for key in keys:
            t = time.monotonic()
            await pilot.press(key)
            slowest = max(slowest, (time.monotonic() - t, key))
        events = len(app.feed.model)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events {events:,}  file {path.stat().st_size / 1e6:.0f} MB")
    print(f"first screen {first:.2f} s  loaded {full:.2f} s  "
          f"slowest key while loading {while_loading:.2f} s, after: {slowest[1]!r} "
          f"{slowest[0]:.2f} s  peak RSS {rss_mb:.0f} MB")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        t = time.monotonic()
        write_big_trace(path, n)
        print(f"wrote {n:,} events in {time.monotonic() - t:.1f} s")
        asyncio.run(measure(path))


if __name__ == "__main__":
    main()
