"""The dashboard in a real terminal (tmux): the keys a first-time user presses do what they say."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal import EXITED, Terminal
from tracer.model import TraceModel
from tui_support import MS, ROOT, write_fixed_trace

SIZE = (160, 48)


@pytest.fixture
def dashboard(fixed_trace: Path) -> Iterator[Terminal]:
    """``loopscope replay`` of the fixed trace, loaded and paused at its end."""
    assert shutil.which("tmux"), "these tests need tmux (.ci/run installs it when missing)"
    term = Terminal([sys.executable, "-m", "loopscope", "replay", str(fixed_trace),
                     "--speed", "inf"], SIZE, ROOT)
    try:
        term.wait_text("PAUSED")
        yield term
    finally:
        term.close()


def tab_row(term: Terminal) -> int:
    """The screen row of the view tabs."""
    return next(i for i, line in enumerate(term.lines()) if " Blocking  Callbacks " in line)


def wait_position(term: Terminal, position: int, total: int) -> None:
    term.wait_text(f"events {position}/{total}")


def test_left_and_right_step_from_the_moment_the_screen_opens(dashboard: Terminal,
                                                               fixed_trace: Path) -> None:
    total = len(TraceModel.load(str(fixed_trace)))
    wait_position(dashboard, total, total)
    dashboard.press("Left")
    wait_position(dashboard, total - 1, total)
    dashboard.press("Home")
    wait_position(dashboard, 0, total)
    dashboard.press("Right")
    wait_position(dashboard, 1, total)
    dashboard.press("Right")
    wait_position(dashboard, 2, total)
    assert "stalled in" in dashboard.screen()      # still the Blocking view: no tab moved


def test_after_a_view_switch_its_table_has_the_focus(dashboard: Terminal,
                                                     fixed_trace: Path) -> None:
    model = TraceModel.load(str(fixed_trace))
    total = len(model)
    second_longest = sorted(model.state.stalls, key=lambda s: -s.call.dur_ns)[1].call
    assert second_longest.dur_ns == 150 * MS
    dashboard.press("Home")
    wait_position(dashboard, 0, total)
    dashboard.press("3")                       # Events: ↓ selects the next event at once
    dashboard.wait_text("state=running")
    dashboard.press("Down")
    wait_position(dashboard, 1, total)
    dashboard.press("2")                       # Callbacks, then back to Blocking by a click
    dashboard.wait_text("total ms")
    row = tab_row(dashboard)
    dashboard.click(dashboard.lines()[row].index("Blocking") + 2, row)
    dashboard.wait_text("stalled in")
    dashboard.press("End")                     # every blocking call is listed at the end
    dashboard.wait_text("250.0")
    dashboard.press("Down", "Enter")           # the second row, and the cursor goes to it
    wait_position(dashboard, second_longest.index + 1, total)


def test_enter_and_escape_take_the_focus_out_of_the_filter(dashboard: Terminal,
                                                           fixed_trace: Path) -> None:
    total = len(TraceModel.load(str(fixed_trace)))
    dashboard.type("/kind:call\r2")           # typed at once, as a user does
    dashboard.wait_text("total ms")            # 2 was a key, not a character of the query
    dashboard.press("3")
    screen = dashboard.wait_for(lambda s: "kind=timer" in s and "state=running" not in s,
                                "the events filtered")
    assert " kind:call " in screen and "kind:call2" not in screen and "kind:call3" not in screen

    dashboard.type("/zz")                      # a new query replaces the old one
    dashboard.wait_text(" zz ")
    dashboard.press("Escape")                  # clears the filter and leaves the box
    dashboard.wait_text("lag_mean=")            # loop samples are back, wherever the list is
    dashboard.press("Home")
    wait_position(dashboard, 0, total)
    dashboard.press("q")
    dashboard.wait_text(EXITED + "0]")


def _connection_bytes(screen: str) -> dict[int, int]:
    """The Descriptors view's TCP connections: fd -> bytes in, where a count is shown."""
    rows = re.finditer(r"^\s*(\d+)\s+TCPConnection\s+\S+\s+\S+\s+([\d,]+)\s+[\d,]+\s",
                       screen, re.MULTILINE)
    return {int(m[1]): int(m[2].replace(",", "")) for m in rows}


def test_descriptors_bytes_grow_while_the_demo_runs(tmp_path: Path) -> None:
    term = Terminal([sys.executable, "-m", "loopscope", "demo", "--duration", "12"], SIZE, tmp_path)
    try:
        term.wait_text("LIVE")
        term.press("4")
        first = _connection_bytes(term.wait_for(_connection_bytes, "connections with bytes"))
        term.wait_for(lambda screen: any(_connection_bytes(screen).get(fd, 0) > seen
                                         for fd, seen in first.items()), "bytes that grew")
        term.press("q")
        term.wait_text(EXITED)
    finally:
        term.close()


def test_live_waits_for_a_trace_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    term = Terminal([sys.executable, "-m", "loopscope", "live", str(path)], SIZE, ROOT)
    try:
        term.wait_text("to appear…")              # the dashboard is up, and says why it waits
        write_fixed_trace(path)                   # the app starts writing
        term.wait_text("LIVE")
        term.wait_text("events 52/52")
        term.press("q")
        term.wait_text(EXITED + "0]")
    finally:
        term.close()
