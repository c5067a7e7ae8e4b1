"""The dashboard on a trace folder in a real terminal (tmux): one lane per process, ``p``/``P``
to show another process, and ``live`` on a folder that its processes are still writing.

The folder is recorded for real: tests/tracer/three_processes/app.py, a parent, a multiprocessing
worker (spawn) and a Python subprocess on asyncio, each blocking its own loop once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal import EXITED, Terminal
from tui_support import ROOT

from tracer.folder import open_folder

SIZE = (160, 48)
APP = ROOT / "tests" / "tracer" / "three_processes" / "app.py"
LANE = re.compile(r"^([▶ ]) +(\d+) (.*?) [─█│┃ ]*[─█│┃][─█│┃ ]* (\d+ stalls?|BLOCKED)")
#: Each process's blocking function, by what it ran.
STALLS = {"app.py spawn": "parent_blocks", "multiprocessing worker (spawned)": "worker_blocks",
          "asyncio_child.py an argument": "child_blocks"}


def run_app(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "loopscope", "run", "-o", f"{folder}/",
                             str(APP), "spawn"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lanes") / "run"
    app = run_app(folder)
    _, err = app.communicate(timeout=120)
    assert app.returncode == 0, err
    return folder


def lanes(screen: str) -> list[tuple[bool, int, str, str]]:
    """(selected, pid, program, note) of each process lane on the screen."""
    found = []
    for line in screen.splitlines():
        match = LANE.match(line)
        if match:
            found.append((match[1] == "▶", int(match[2]), match[3].strip(), match[4]))
    return found


def pids_by_program(folder: Path) -> dict[str, int]:
    return {p.program: p.pid for p in open_folder(str(folder))}


@pytest.fixture
def replay(folder: Path) -> Iterator[Terminal]:
    assert shutil.which("tmux"), "these tests need tmux (.ci/run installs it when missing)"
    term = Terminal([sys.executable, "-m", "loopscope", "replay", str(folder), "--speed", "inf"],
                    SIZE, ROOT)
    try:
        term.wait_for(lambda s: "PAUSED" in s and len(lanes(s)) == 3, "three lanes, paused")
        yield term
    finally:
        term.close()


def test_replay_shows_one_lane_per_process_and_p_shows_each_ones_stall(replay, folder):
    pids = pids_by_program(folder)
    order = list(pids)       # parents first, then by start: the root, the worker, the subprocess
    assert [(selected, pid) for selected, pid, *_ in lanes(replay.screen())] == \
        [(True, pids[order[0]]), (False, pids[order[1]]), (False, pids[order[2]])]
    for key, shown in [("", 0), ("p", 1), ("p", 2), ("p", 0), ("P", 2)]:
        if key:
            replay.press(key)
        program = order[shown]
        replay.wait_text(f"run pid {pids[program]}")
        screen = replay.wait_text(f"{STALLS[program]} (")      # its Blocking row
        assert [selected for selected, *_ in lanes(screen)] == [i == shown for i in range(3)]
        table = screen.split(" Blocking  Callbacks ")[1]
        others = set(STALLS.values()) - {STALLS[program]}
        assert not [fn for fn in others if f"{fn} (" in table], screen
    replay.press("q")
    replay.wait_text(EXITED + "0]")


def test_live_follows_a_folder_its_processes_are_still_writing(tmp_path):
    assert shutil.which("tmux"), "these tests need tmux (.ci/run installs it when missing)"
    folder = tmp_path / "growing"
    term = Terminal([sys.executable, "-m", "loopscope", "live", f"{folder}/"], SIZE, ROOT)
    app = None
    try:
        term.wait_text("to appear…")                 # up before the app starts
        app = run_app(folder)
        term.wait_text("LIVE")                        # the parent's trace has started
        term.wait_for(lambda s: len(lanes(s)) == 3, "the children's lanes as they start")
        _, err = app.communicate(timeout=120)
        assert app.returncode == 0, err
        screen = term.wait_for(
            lambda s: all(note.endswith(("stall", "stalls")) and note[0] != "0"
                          for *_, note in lanes(s)) and "LIVE (ended)" in s,
            "every process with its stall, the parent's trace ended")
        pids = pids_by_program(folder)
        order = [pid for _, pid, *_ in lanes(screen)]   # by start: the children race
        assert set(order) == set(pids.values())
        child = pids["asyncio_child.py an argument"]
        term.press(*["p"] * order.index(child))
        term.wait_text(f"growing pid {child}")
        term.wait_text("child_blocks (")
        term.press("q")
        term.wait_text(EXITED + "0]")
    finally:
        term.close()
        if app is not None and app.poll() is None:
            app.kill()
            app.wait()
