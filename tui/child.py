"""The traced application of ``loopscope run --tui``, as a child process.

The app runs in its own process (``python -P -m loopscope run ...``) so that a
blocked app never freezes the dashboard, and so that the dashboard owns the
terminal: the child's stdout and stderr are piped here line by line and shown
in the output pane instead of scribbling over the screen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable


class ChildApp:
    """Starts ``python -P -m loopscope run -o TRACE --threshold MS *target`` and
    hands each line it prints to ``on_line`` (from a reader thread).

    ``-P`` keeps the working directory off ``sys.path`` while loopscope starts, so a user's
    own ``tracer.py`` or ``loopscope.py`` there cannot stand in for loopscope's modules (the
    app itself still gets its directory on ``sys.path``, as under ``python app.py``)."""

    def __init__(self, target: list[str], trace_path: str, threshold_ms: float) -> None:
        self.argv = [
            sys.executable, "-P", "-m", "loopscope", "run",
            "-o", trace_path, "--threshold", f"{threshold_ms:g}", *target,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.terminated_by_us = False
        self._reader: threading.Thread | None = None

    def start(self, on_line: Callable[[str], None], on_exit: Callable[[int], None]) -> None:
        """Spawn the child; ``on_exit(returncode)`` runs once its output ends."""
        # Unbuffered so that output shows up when it is printed, not at exit.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        process = self.process

        def pump() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
            on_exit(process.wait())

        self._reader = threading.Thread(target=pump, name="loopscope-child-output", daemon=True)
        self._reader.start()

    @property
    def returncode(self) -> int | None:
        """The child's exit status, or None while it runs."""
        return None if self.process is None else self.process.poll()

    def terminate(self, grace_s: float = 3.0) -> None:
        """Stop the child if it still runs: SIGTERM (the tracer flushes its
        trace on it), then SIGKILL if it does not go within ``grace_s``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.terminated_by_us = True
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
