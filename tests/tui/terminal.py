"""A real terminal for the dashboard tests: tmux running the loopscope CLI, read with capture-pane.

Pilot drives the App inside the test's own event loop and hands it keys as Textual events, so it
never sees what a terminal does: which widget has the focus when the screen first opens, how
keys arrive as bytes.  These tests start the real CLI in a tmux window of a fixed size (a tmux
server of their own, so nothing else's sessions are touched), send keys as a user types them
and read the screen as text.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from itertools import count
from pathlib import Path

#: Longest wait for the screen to show something (a loaded machine starts Textual slowly).
WAIT_S = 60.0
EXITED = "[loopscope exited "
_sessions = count()


class Terminal:
    """One tmux window of ``size`` (columns, rows) running ``argv`` in ``cwd``."""

    def __init__(self, argv: Sequence[str], size: tuple[int, int], cwd: Path) -> None:
        # The tmux server daemonizes onto /dev/null: name the cause if that is broken.
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode), \
            "/dev/null is not the null device (something replaced it with a file)"
        self.socket = f"loopscope-test-{os.getpid()}-{next(_sessions)}"
        # The shell line outlives the command, so its exit status stays readable on screen.
        # COLUMNS and LINES (which reach the window under pytest) would override the window's
        # real size for Textual.
        line = f"unset COLUMNS LINES; {shlex.join(argv)}; echo '{EXITED}'$?']'; sleep 600"
        width, height = size
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   "-c", str(cwd), line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-f", "/dev/null", "-L", self.socket, *args],
                              capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def lines(self) -> list[str]:
        return self.screen().splitlines()

    def press(self, *keys: str) -> None:
        """Keys by tmux's names (``Right``, ``Enter``, ``Escape``, ``2``), one at a time."""
        for key in keys:
            self._tmux("send-keys", "-t", "t", key)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def click(self, x: int, y: int) -> None:
        """A left click at column ``x``, row ``y`` (0-based), as an xterm SGR mouse report."""
        self.type(f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m")

    def wait_for(self, condition: Callable[[str], bool], what: str) -> str:
        """The screen once ``condition(screen)`` holds; fails naming ``what`` otherwise."""
        deadline = time.monotonic() + WAIT_S
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {what}:\n{screen}")
            time.sleep(0.1)

    def wait_text(self, text: str) -> str:
        return self.wait_for(lambda screen: text in screen, repr(text))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
