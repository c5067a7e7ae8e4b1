"""Support for the dashboard tests: writing trace files, driving the App.

Tests need traces with exactly known content (a fixed trace for snapshots, a
file that grows while the dashboard follows it, a stall that starts and
ends), so they write them here in the documented format
(docs/trace-format.md) instead of recording a real app, whose timings vary.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

from textual.pilot import Pilot

from tui.app import LoopscopeApp
from tui.feed import Feed
from tui.playback import Mode

MS = 1_000_000
ROOT = Path(__file__).resolve().parents[2]


class TraceWriter:
    """Appends header and event lines to ``path``; each write is flushed so
    a follower sees it at once."""

    def __init__(self, path: Path, threshold_ms: float = 50.0) -> None:
        self.path = path
        self._f = open(path, "w", encoding="utf-8")
        self.line({"ev": "trace", "v": 1, "pid": 4242, "argv": ["app.py"], "python": "3.11.7",
                   "start_wall": 1764197532.25, "threshold_ms": threshold_ms,
                   "clock": "monotonic"})
        self._next_site = 1

    def line(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj) + "\n")
        self._f.flush()

    def event(self, t: int, ev: str, **fields: Any) -> None:
        self.line({"t": t, "ev": ev, **fields})

    def site(self, t: int, fn: str, file: str = "/app/app.py", line: int = 10) -> int:
        """Intern a site and return its id."""
        site_id = self._next_site
        self._next_site += 1
        self.event(t, "site", id=site_id, fn=fn, file=file, line=line)
        return site_id

    def close(self) -> None:
        self._f.close()


def write_fixed_trace(path: Path) -> Path:
    """A small deterministic trace: a server whose handler blocks 250 ms,
    a Deferred callback that parses for 150 ms, a CPU-bound timer of 120 ms,
    thread work, an unhandled failure, and a repr full of markup and escapes."""
    w = TraceWriter(path)
    w.event(0, "reactor", state="running")
    listen = w.site(1000, "reactor.tcp.Port.doRead", "/app/reactor/tcp.py", 80)
    handler = w.site(2000, "examples.blocking_server.Slow.dataReceived",
                     "/app/examples/blocking_server.py", 31)
    parse = w.site(3000, "examples.blocking_deferred.parse", "/app/examples/blocking_deferred.py", 12)
    creator = w.site(3500, "examples.blocking_deferred.fetch", "/app/examples/blocking_deferred.py", 20)
    tick = w.site(4000, "examples.blocking_timer.crunch", "/app/examples/blocking_timer.py", 8)
    sched = w.site(4500, "examples.blocking_timer.main", "/app/examples/blocking_timer.py", 30)
    work = w.site(5000, "examples.threads_demo.slow_io", "/app/examples/threads_demo.py", 5)
    evil = w.site(5500, "app.[bold]evil[/bold][@click=app.quit]x[/]", "/app/\x1b[31mred.py", 1)
    w.event(10 * MS, "fdadd", fd=6, mode="r", type="Port")
    w.event(20 * MS, "poll", wait=10 * MS, ready=[[6, 1]])
    w.event(21 * MS, "call", kind="read", site=listen, dur=1 * MS, depth=0, fd=6)
    w.event(22 * MS, "conn", fd=7, role="server", host="127.0.0.1:8000", peer="127.0.0.1:50123")
    w.event(22 * MS, "fdadd", fd=7, mode="r", type="Server")
    w.event(30 * MS, "dnew", d=1, site=creator)
    w.event(31 * MS, "dadd", d=1, cb=parse, eb=0)
    w.event(32 * MS, "dnew", d=2, site=creator)
    w.event(33 * MS, "dnew", d=3, site=creator)
    w.event(34 * MS, "dnew", d=4, site=creator)
    w.event(35 * MS, "dfire", d=3, fail=False)
    w.event(36 * MS, "dchain", d=3, inner=4)
    for i in range(1, 11):
        w.event(i * 100 * MS, "loop", dt=100 * MS, it=400, busy=10 * MS, idle=90 * MS,
                calls=40, lag_max=1 * MS, lag_mean=MS // 2)
    w.event(1050 * MS, "stall", site=handler, kind="read", depth=0, since=1000 * MS,
            blocked=50 * MS, stack=[["/app/examples/blocking_server.py", 33, "Slow.dataReceived"],
                                    ["/usr/lib/python3.11/time.py", 0, "sleep"]])
    w.event(1150 * MS, "stall", site=handler, kind="read", depth=0, since=1000 * MS,
            blocked=150 * MS, stack=[["/app/examples/blocking_server.py", 33, "Slow.dataReceived"],
                                     ["/usr/lib/python3.11/time.py", 0, "sleep"]])
    w.event(1250 * MS, "call", kind="read", site=handler, dur=250 * MS, depth=0, fd=7)
    w.event(1300 * MS, "loop", dt=300 * MS, it=1, busy=260 * MS, idle=40 * MS, calls=1,
            lag_max=240 * MS, lag_mean=120 * MS)
    w.event(1400 * MS, "dfire", d=1, fail=False)
    w.event(1550 * MS, "dcall", d=1, site=parse, dur=150 * MS, depth=0, eb=False, fail=False)
    w.event(1600 * MS, "timer", id=3, site=sched, fn=tick, due=1700 * MS)
    w.event(1820 * MS, "call", kind="timer", site=tick, dur=120 * MS, depth=0, timer=3,
            lag=0)
    w.event(1900 * MS, "tsub", job=1, fn=work)
    w.event(1901 * MS, "tstart", job=1, tid=140000)
    w.event(2000 * MS, "mark", label="[red]not markup[/red] \x1b[2J\x07")
    w.event(2100 * MS, "unhandled", d=5, site=creator, exc="ValueError",
            msg="bad [bold]input[/bold] [@click=app.quit]quit[/]", stack=[])
    w.event(2150 * MS, "call", kind="timer", site=evil, dur=1 * MS, depth=0, timer=4, lag=0)
    w.event(2201 * MS, "tdone", job=1)
    w.event(2300 * MS, "call", kind="thread", site=listen, dur=2 * MS, depth=0)
    for i in range(21, 25):
        w.event(i * 100 * MS + 5 * MS, "loop", dt=100 * MS, it=300, busy=20 * MS, idle=80 * MS,
                calls=30, lag_max=2 * MS, lag_mean=1 * MS)
    w.event(2500 * MS, "reactor", state="stopped")
    w.line({"ev": "end", "events": 50, "dropped": 0})
    w.close()
    return path


def replay_app(path: Path, speed: float = math.inf) -> LoopscopeApp:
    """An App replaying ``path``; at the default max speed it ends paused at
    the trace's end as soon as the file is loaded."""
    app = LoopscopeApp(Feed(str(path), follow=False), mode=Mode.REPLAY, speed=speed)
    app.animation_level = "none"   # Pilot waits for animations; tests need none
    return app


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``condition()`` holds (fails after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.05)


async def still(pilot: Pilot[Any], timeout: float = 5.0) -> None:
    """Let the app run until two screenshots 0.1 s apart are the same: redraws that
    follow one another (a scroll, then the scrollbar that shows it) are all done."""
    previous = None
    deadline = time.monotonic() + timeout
    while (shot := pilot.app.export_screenshot()) != previous:
        assert time.monotonic() < deadline, "the screen kept changing"
        previous = shot
        await pilot.pause(0.1)


async def loaded(pilot: Pilot[Any]) -> LoopscopeApp:
    """Wait until the trace is loaded and replayed to its end (paused)."""
    app = pilot.app
    assert isinstance(app, LoopscopeApp)
    await until(pilot, lambda: app.feed.loaded and app.playback.mode is Mode.PAUSED
                and app.feed.model is not None and app.playback.cursor == len(app.feed.model))
    await pilot.pause()
    return app

