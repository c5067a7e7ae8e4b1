"""``loopscope run --tui``: the app runs in a child process under the tracer,
its output goes to a pane, and the dashboard follows its trace."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

from textual.widgets import RichLog

from tui.app import LoopscopeApp
from tui.child import ChildApp
from tui.feed import Feed
from tui.playback import Mode
from tui.launch import live, replay
from tracer.reader import TraceError
from tui_support import ROOT, until

APP = """
import time
from reactor import reactor
print("hello from the app", flush=True)
def block():
    time.sleep(0.2)
reactor.callLater(0.05, block)
reactor.callLater({stop_after}, reactor.stop)
reactor.run()
print("[bold]bye[/bold] \\x1b[31mred")
"""


def child_app(tmp_path: Path, stop_after: float) -> LoopscopeApp:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP.format(stop_after=stop_after)))
    trace = str(tmp_path / "app.jsonl")
    app = LoopscopeApp(Feed(trace, follow=True, wait=True), mode=Mode.LIVE,
                       child=ChildApp([str(script)], trace, 50.0))
    app.animation_level = "none"
    return app


def output_lines(app: LoopscopeApp) -> list[str]:
    return [line.text for line in app.query_one("#output", RichLog).lines]


def test_the_app_runs_traced_with_its_output_in_a_pane(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)   # the child imports reactor/tracer from the checkout

    async def main() -> None:
        app = child_app(tmp_path, stop_after=0.4)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.child_status is not None, timeout=20)
            await until(pilot, lambda: app.feed.model is not None
                        and app.feed.model.state.ended, timeout=5)
            await pilot.pause(0.2)
            assert app.child_status == "app exited (0)"
            lines = output_lines(app)
            assert "hello from the app" in lines
            assert "[bold]bye[/bold] red" in lines       # shown as text, escape stripped
            assert [b.dur_ns > 150_000_000 for b in app.feed.model.state.blocking] == [True]
            assert "LIVE (ended)" in str(app.query_one("#hdr-mode").render())
            await pilot.press("q")
        assert app.return_code == 0
    asyncio.run(main())


def test_quitting_the_dashboard_stops_a_running_app(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)

    async def main() -> None:
        app = child_app(tmp_path, stop_after=60)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "hello from the app" in output_lines(app), timeout=20)
            await until(pilot, lambda: app.feed.model is not None
                        and len(app.feed.model.state.blocking) == 1, timeout=5)
            await pilot.press("q")
        assert app.child is not None and app.child.returncode is not None
        assert app.child.terminated_by_us and app.return_code == 0
    asyncio.run(main())


def test_bad_input_is_refused_before_the_screen_opens(tmp_path: Path, fixed_trace: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    with pytest.raises(TraceError, match="not a loopscope trace"):
        replay(str(bad))
    with pytest.raises(TraceError, match="does not exist"):
        replay(str(tmp_path / "missing.jsonl"))
    with pytest.raises(TraceError, match="--speed"):
        replay(str(fixed_trace), speed=0)


def test_live_refuses_what_can_never_become_a_trace(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(TraceError, match="not a loopscope trace"):
        live(str(tmp_path / "notes.txt"))
    os.mkfifo(tmp_path / "a-fifo")
    with pytest.raises(TraceError, match="a FIFO, not a trace file"):
        live(str(tmp_path / "a-fifo"))   # (a directory is a trace folder: it is followed)
