"""Entry points the ``loopscope`` CLI calls to open the dashboard (the CLI imports this
module; nothing here imports the CLI).

Each checks its input before the screen takes over the terminal (a bad file
raises :class:`tracer.reader.TraceError` with one sentence, which the CLI
prints), runs the App, and returns the process exit code.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tracer.reader import TraceError, read_header
from tui.app import LoopscopeApp
from tui.child import ChildApp
from tui.feed import Feed
from tui.playback import Mode


def replay(path: str, speed: float = 1.0) -> int:
    """Replay a saved trace from its start at ``speed`` (inf: as fast as it loads)."""
    if not speed > 0 or math.isnan(speed):
        raise TraceError(f"--speed must be a positive number, not {speed}")
    read_header(path)   # refuse a bad file before the screen opens
    app = LoopscopeApp(Feed(path, follow=False), mode=Mode.REPLAY, speed=speed)
    return app.run() or 0


def live(path: str) -> int:
    """Follow a trace another process is writing (shown from its start, the cursor staying
    at the end as it grows).  A file that does not exist yet is waited for, so the dashboard
    can be opened before the app starts."""
    if os.path.isdir(path):
        raise TraceError(f"{path} is a directory, not a trace file")
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        read_header(path)   # refuse a bad file; an empty one may get its header yet
    app = LoopscopeApp(Feed(path, follow=True, wait=True), mode=Mode.LIVE)
    return app.run() or 0


def run_app(target: list[str], trace_path: str, threshold_ms: float) -> int:
    """Run ``target`` under the tracer in a child process and follow its
    trace; returns the child's exit code (0 when the dashboard stopped it)."""
    if not target:
        raise TraceError("nothing to run: give a script or -m MODULE")
    if os.path.isdir(trace_path):
        raise TraceError(f"{trace_path} is a directory, not a trace file")
    Path(trace_path).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(trace_path):
        os.unlink(trace_path)  # the follower must not read an old run's lines
    child = ChildApp(target, trace_path, threshold_ms)
    app = LoopscopeApp(Feed(trace_path, follow=True, wait=True), mode=Mode.LIVE, child=child,
                       title=" ".join(target[1:] if target[0] == "-m" else target))
    try:
        return app.run() or 0
    finally:
        child.terminate()

