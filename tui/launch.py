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

from tracer.folder import is_folder, open_folder
from tracer.reader import TraceError, read_header
from tui.app import LoopscopeApp
from tui.child import ChildApp
from tui.feed import Feed
from tui.folderfeed import FolderFeed
from tui.playback import Mode


def replay(path: str, speed: float = 1.0) -> int:
    """Replay a saved trace (a file, or a trace folder: one process at a time, the others in
    the process lanes) from its start at ``speed`` (inf: as fast as it loads)."""
    if not speed > 0 or math.isnan(speed):
        raise TraceError(f"--speed must be a positive number, not {speed}")
    feed: Feed | FolderFeed
    if is_folder(path):
        open_folder(path)   # refuse a folder without traces, name the broken files
        feed = FolderFeed(path, follow=False)
    else:
        read_header(path)   # refuse a bad file before the screen opens
        feed = Feed(path, follow=False)
    app = LoopscopeApp(feed, mode=Mode.REPLAY, speed=speed)
    return app.run() or 0


def live(path: str) -> int:
    """Follow a trace another process is writing (shown from its start, the cursor staying
    at the end as it grows), or a trace folder that its processes are writing (files that
    appear later are followed too).  A file that does not exist yet is waited for, so the
    dashboard can be opened before the app starts; a path ending in ``/`` is a folder."""
    if is_folder(path) or path.endswith(os.sep):
        app = LoopscopeApp(FolderFeed(path, follow=True, wait=True), mode=Mode.LIVE)
        return app.run() or 0
    if os.path.exists(path) and (not os.path.isfile(path) or os.path.getsize(path) > 0):
        read_header(path)   # refuse a FIFO or a bad file; an empty one may get its header yet
    app = LoopscopeApp(Feed(path, follow=True, wait=True), mode=Mode.LIVE)
    return app.run() or 0


def run_app(target: list[str], trace_path: str, threshold_ms: float) -> int:
    """Run ``target`` under the tracer in a child process and follow its
    trace; returns the child's exit code (0 when the dashboard stopped it)."""
    if not target:
        raise TraceError("nothing to run: give a script or -m MODULE")
    feed: Feed | FolderFeed
    if trace_path.endswith(os.sep) or os.path.isdir(trace_path):
        feed = FolderFeed(trace_path, follow=True, wait=True)  # the child refuses a used one
    else:
        Path(trace_path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(trace_path):
            os.unlink(trace_path)  # the follower must not read an old run's lines
        feed = Feed(trace_path, follow=True, wait=True)
    child = ChildApp(target, trace_path, threshold_ms)
    app = LoopscopeApp(feed, mode=Mode.LIVE, child=child,
                       title=" ".join(target[1:] if target[0] == "-m" else target))
    try:
        return app.run() or 0
    finally:
        child.terminate()

