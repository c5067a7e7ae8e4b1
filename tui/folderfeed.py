"""Filling the dashboard from a trace folder: one :class:`tui.feed.Feed` per process's file.

A folder (tracer/folder.py) holds one trace per process of a run.  Each file gets a Feed of
its own (its own model, its own reading thread), and the dashboard shows one process at a
time, the *selected* one, while the process lanes (tui/processes.py) show every process on the
run's timeline.  This class looks like a Feed to the App: ``model``, ``lock``, ``loaded`` and
the byte counts are the selected process's.  When following, files that appear in the folder
later (a process started later) are picked up on the next look.
"""

from __future__ import annotations

import os
import threading

from tracer.folder import start_wall as header_start_wall
from tracer.folder import trace_files
from tracer.model import Model
from tracer.reader import TraceError
from tui.feed import POLL_S, Feed


class FolderFeed:
    """Feeds for every trace of ``path`` (a folder), one of them selected."""

    def __init__(self, path: str, follow: bool, wait: bool = False) -> None:
        self.path = path
        self.follow = follow
        self.wait = wait
        #: Every warning, of any file, each naming its file.
        self.warnings: list[str] = []
        self.error: str | None = None
        self._feeds: dict[str, Feed] = {}
        self._reported: set[str] = set()   # files whose error is already a warning
        self._selected: Feed | None = None
        self._idle = threading.Lock()       # the selection's stand-in lock before any model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopscope-folder", daemon=True)

    # -- the selected process, as a Feed --------------------------------------------------
    @property
    def selected(self) -> Feed | None:
        return self._selected

    @property
    def model(self) -> Model | None:
        return None if self._selected is None else self._selected.model

    @property
    def lock(self) -> threading.RLock | threading.Lock:
        return self._idle if self._selected is None else self._selected.lock

    @property
    def loaded(self) -> bool:
        return self._selected is not None and self._selected.loaded

    @property
    def bytes_done(self) -> int:
        return 0 if self._selected is None else self._selected.bytes_done

    @property
    def bytes_total(self) -> int:
        return 0 if self._selected is None else self._selected.bytes_total

    # -- the processes ---------------------------------------------------------------------
    def processes(self) -> list[Feed]:
        """The feeds whose header has been read, in the order their processes started."""
        ready = [f for f in list(self._feeds.values()) if f.model is not None]
        return sorted(ready, key=lambda f: (start_wall(f), f.path))

    def select(self, feed: Feed) -> None:
        """Show ``feed``'s process (called on the UI thread)."""
        self._selected = feed

    def start_ns(self, feed: Feed) -> int:
        """Where ``feed``'s ``t = 0`` is on the run's timeline (the earliest start is 0)."""
        starts = [start_wall(f) for f in self.processes()]
        return round((start_wall(feed) - min(starts, default=start_wall(feed))) * 1e9)

    # -- reading ---------------------------------------------------------------------------
    def start(self) -> None:
        self._look()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for feed in list(self._feeds.values()):
            feed.stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            if self.follow:
                self._look()
            self._check()

    def _look(self) -> None:
        """Start a feed for each trace file not seen yet."""
        try:
            files = trace_files(self.path) if os.path.isdir(self.path) else []
        except TraceError as e:
            self.error = str(e)
            return
        for path in files:
            if path not in self._feeds:
                feed = Feed(path, follow=self.follow, wait=True, warnings=self.warnings)
                self._feeds[path] = feed
                feed.start()
        if not files and not self.follow:
            self.error = f"{self.path} holds no loopscope trace (no readable *.jsonl file)"

    def _check(self) -> None:
        """A file that is not a trace becomes a warning naming it; the first process read is
        selected."""
        for path, feed in list(self._feeds.items()):
            if feed.error is not None and path not in self._reported:
                self._reported.add(path)
                self.warnings.append(f"{feed.error}; left out")
        if self._selected is None:
            ready = self.processes()
            if ready:
                self._selected = ready[0]
            elif not self.follow and self._feeds and all(f.error for f in self._feeds.values()):
                self.error = f"{self.path} holds no readable loopscope trace"


def start_wall(feed: Feed) -> float:
    """The Unix time of ``feed``'s ``t = 0`` (0 before its header is read)."""
    model = feed.model
    return 0.0 if model is None else header_start_wall(model.header)
