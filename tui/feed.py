"""Filling the dashboard's trace model from a file, on a background thread.

One model, two feeds: a saved trace is read to its end and the cursor is
paced over it (replay); a live trace is read to its end and then followed as
its writer appends (live).  Either way the reading happens here, off the UI
thread, in bounded chunks appended to the model under :attr:`Feed.lock`, so a
big trace shows its first screen while the rest is still loading.  The UI
takes the same lock while it reads the model, and never parses anything
itself (the follower reads lines, the model folds them).
"""

from __future__ import annotations

import os
import threading
import time

from tracer.indexed import open_model
from tracer.model import Model, TraceModel
from tracer.reader import Follower, TraceError

POLL_S = 0.1
#: Bytes read per chunk while loading: small enough that the UI thread never
#: waits long for the lock, big enough that loading is not slowed by it.
CHUNK_BYTES = 256 << 10
FIRST_CHUNK_BYTES = 32 << 10
#: The rest after a chunk, as a share of the time it took: the Python model
#: parses for as long as it is let (resting as long halves the loading speed
#: and keeps the screen responsive); the compiled one needs little.
REST_RATIO = 1.0
COMPILED_REST_RATIO = 0.25


class Feed:
    """Reads ``path`` into a model (tracer.indexed.open_model); keeps following it when
    ``follow`` is true (waiting for the file to appear when ``wait`` is)."""

    def __init__(self, path: str, follow: bool, wait: bool = False,
                 warnings: list[str] | None = None) -> None:
        self.path = path
        self.follow = follow
        self.wait = wait
        self.lock = threading.RLock()
        self.model: Model | None = None
        self._rest = REST_RATIO
        self.loaded = False          # the file was read to its end once
        self.bytes_done = 0
        self.bytes_total = 0
        self.error: str | None = None
        #: Warnings about the file (a folder's feeds share one list: each names its file).
        self.warnings: list[str] = [] if warnings is None else warnings
        self._prefix = "" if warnings is None else f"{os.path.basename(path)}: "
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopscope-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading (returns once the reader thread has finished)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _warn(self, message: str) -> None:
        self.warnings.append(self._prefix + message)

    def _run(self) -> None:
        try:
            with Follower(self.path, warn=self._warn, wait=self.wait) as follower:
                self._read(follower)
        except TraceError as e:
            self.error = str(e)
        except OSError as e:
            self.error = f"cannot read {self.path}: {e.strerror}"

    def _read(self, follower: Follower) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            before = follower.offset
            # A small first chunk puts the first screen up sooner.
            block = follower.poll_block(CHUNK_BYTES if self.model is not None else FIRST_CHUNK_BYTES)
            if follower.header is not None and self.model is None:
                with self.lock:
                    self.model = open_model(self.path, follower.header, self._warn)
                    self._rest = REST_RATIO if isinstance(self.model, TraceModel) \
                        else COMPILED_REST_RATIO
            if block is not None and self.model is not None:
                with self.lock:
                    self.model.add_block(*block)
            self.bytes_done, self.bytes_total = follower.offset, follower.size()
            if block is not None or follower.offset != before:
                # Loading holds the GIL: without a rest the UI thread hardly
                # gets it and keys wait.  The rest is a share of the time the
                # chunk took (parsing in Python is slow, the compiled fold is
                # not: its chunks take a millisecond or two).
                self._stop.wait((time.monotonic() - started) * self._rest)
                continue
            if self.model is not None:
                self.loaded = True
            elif not self.follow:
                raise TraceError(f"{self.path} is empty, not a trace")
            if not self.follow:
                return
            self._stop.wait(POLL_S)
