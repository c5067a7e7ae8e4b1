"""``loopscope run --otlp``: the sidecar that sends a growing trace to a collector, live.

It is a process of its own, not a thread in the app: encoding spans is Python work, and a
thread would compete with the app for the GIL.  It follows the trace file as the recorder
writes it (:class:`tracer.reader.Follower`), folds the events into the same spans and metrics
as ``loopscope export --format otlp`` (:mod:`tracer.otlp`), and POSTs them in batches, about
once a second or as soon as a batch is full.  The app's child processes write traces of their
own beside it (in the trace folder, or ``t.<pid>.jsonl`` beside ``t.jsonl``): each one whose
header names a followed trace as its parent is followed too, its spans in the same OTLP trace
under its own resource, as ``export`` sends a trace folder.  Sending never holds the reading up: requests wait
in a bounded queue for a sender thread, and when the collector is slow or down the oldest are
dropped and counted.  The launcher (:func:`loopscope.cli.cmd_run`) holds the write end of this
process's stdin: end of file there means the app has exited and its trace is complete, and
the sidecar then sends what is left (for at most :data:`DRAIN_S`) and exits with one line on
stderr saying what was sent and what was dropped.

    python -m loopscope.otlp_live TRACE ENDPOINT [--span-over MS] [--service-name NAME]
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Sequence

from tracer import otlp
from tracer.folder import trace_files
from tracer.reader import Follower, TraceError, read_header, warn_stderr

#: How often the trace is read: the recorder writes every 100 ms.
POLL_S = 0.1
#: One read of the trace: a few MB, so that a sidecar that is behind still flushes on time.
READ_BYTES = 1 << 22
#: A batch goes out at least this often, so that a stall reaches the backend within seconds.
FLUSH_S = 1.0
#: Requests waiting for the collector: 64 requests of up to 256 spans is a few MB at most.
QUEUE_REQUESTS = 64
#: One request's timeout: short, so that a collector that does not answer cannot eat the drain.
POST_TIMEOUT_S = 2.0
#: What the app's exit may wait for the rest of the trace to be read and sent.
DRAIN_S = 5.0


class Sender:
    """POSTs queued requests from a thread; a full queue drops its oldest request."""

    def __init__(self, endpoint: str, capacity: int = QUEUE_REQUESTS) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.capacity = capacity
        self.sent_spans = self.sent_requests = 0
        self.dropped_spans = self.dropped_requests = 0
        self._queue: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self._in_flight: tuple[str, bytes, int] | None = None
        self._closed = False
        self._warned = False
        self._cond = threading.Condition()
        threading.Thread(target=self._run, name="loopscope-otlp-sender", daemon=True).start()

    def put(self, path: str, body: bytes, spans: int) -> None:
        """Queue a request for ``/v1/traces`` or ``/v1/metrics`` carrying ``spans`` spans."""
        with self._cond:
            if len(self._queue) >= self.capacity:
                self._drop(self._queue.popleft())
            self._queue.append((path, body, spans))
            self._cond.notify_all()

    def _drop(self, request: tuple[str, bytes, int]) -> None:
        self.dropped_requests += 1
        self.dropped_spans += request[2]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                request = self._in_flight = self._queue.popleft()
            path, body, spans = request
            error: otlp.ExportError | None = None
            try:
                otlp.post(self.endpoint + path, body, POST_TIMEOUT_S)
            except otlp.ExportError as e:
                error = e
            with self._cond:
                self._in_flight = None
                if self._closed:
                    return
                if error is None:
                    self.sent_requests += 1
                    self.sent_spans += spans
                else:
                    self._drop(request)
                    if not self._warned:
                        self._warned = True
                        print(f"loopscope: warning: {error} (the app goes on; OTLP data is "
                              "dropped while the collector does not answer)", file=sys.stderr)
                self._cond.notify_all()

    def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the queue to empty; what is still queued is dropped."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._in_flight is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._closed = True
            for request in [*self._queue, *([self._in_flight] if self._in_flight else [])]:
                self._drop(request)
            self._queue.clear()

    def report(self, processes: int = 1) -> str:
        """One line: what was sent, of how many processes' traces, and what was dropped."""
        line = (f"loopscope: otlp: sent {self.sent_spans} spans in {self.sent_requests} "
                f"requests to {self.endpoint}")
        if processes > 1:
            line += f" from {processes} processes"
        if self.dropped_requests:
            line += (f", dropped {self.dropped_requests} requests ({self.dropped_spans} spans) "
                     "the collector was too slow or unreachable for")
        return line


class LiveExport:
    """Folds followed events into spans and hands complete batches to the sender."""

    def __init__(self, sender: Sender, span_over_ms: float | None, service: str | None,
                 trace_id: str | None = None, process: int = 0) -> None:
        self.sender = sender
        self.span_over_ms = span_over_ms
        self.service = service
        #: Where this process's spans go in the run's trace: a child's go in the app's (its
        #: trace id, span ids from the ``process``-th range; otlp.Spans says how).
        self.trace_id = trace_id
        self.process = process
        self._spans: otlp.Spans | None = None
        self._resource: otlp.Json = {}
        self._index = 0
        self._new_events = False
        self._next_flush = time.monotonic() + FLUSH_S

    def feed(self, header: otlp.Json | None, events: list[otlp.Json]) -> None:
        if header is None:
            return
        if self._spans is None:
            self._spans = otlp.new_spans(header, self.span_over_ms)
            self._spans.trace_id = self.trace_id or self._spans.trace_id
            self._spans.process = self.process
            self._resource = otlp.resource(header, self.service)
        for ev in events:
            self._spans.add(ev, self._index, warn_stderr)
            self._index += 1
        self._new_events = self._new_events or bool(events)

    def flush_if_due(self) -> None:
        """Flush when a request is full or the last flush is :data:`FLUSH_S` old."""
        now = time.monotonic()
        full = self._spans is not None and len(self._spans.spans) >= otlp.SPANS_PER_REQUEST
        if full or now >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Queue the spans completed so far and the metrics, when anything new came in."""
        self._next_flush = time.monotonic() + FLUSH_S
        if self._spans is None or not self._new_events:
            return
        self._new_events = False
        spans, busy = self._spans.take()
        if spans:
            for request in otlp.trace_requests(self._resource, spans):
                count = len(request["resourceSpans"][0]["scopeSpans"][0]["spans"])
                self.sender.put("/v1/traces", otlp.encode("ExportTraceServiceRequest", request),
                                count)
        metrics = otlp.metrics_request(self._resource, self._spans, busy)
        self.sender.put("/v1/metrics", otlp.encode("ExportMetricsServiceRequest", metrics), 0)

    @property
    def started(self) -> bool:
        return self._spans is not None

    @property
    def spans_trace_id(self) -> str | None:
        """The OTLP trace id this process's spans carry, once its header is read."""
        return None if self._spans is None else self._spans.trace_id


class Processes:
    """The app's trace and those of its children, each followed into its own LiveExport."""

    def __init__(self, path: str, sender: Sender, span_over_ms: float | None,
                 service: str | None) -> None:
        self.sender = sender
        self.span_over_ms = span_over_ms
        self.service = service
        self.directory = os.path.dirname(os.path.abspath(path))
        self.followed: list[tuple[str, Follower, LiveExport]] = [
            (os.path.abspath(path), Follower(path, wait=True), LiveExport(sender, span_over_ms, service))]
        self._looked_at = {os.path.abspath(path)}   # followed, or not a child of the run

    def find_children(self) -> None:
        """Follow the traces that appeared beside the app's and whose header names a followed
        trace as parent; a file whose header is still being written is looked at again."""
        app_trace_id = self.followed[0][2].spans_trace_id
        if app_trace_id is None:
            return   # the app's own header first: its children's spans go in its trace
        parents = {os.path.basename(path) for path, _, _ in self.followed}
        # A child of ``t.jsonl`` writes ``t.<pid>.jsonl``, of ``t`` (no .jsonl) ``t.<pid>``.
        app = os.path.basename(self.followed[0][0])
        beside = [] if app.endswith(".jsonl") else [
            os.path.join(self.directory, name) for name in sorted(os.listdir(self.directory))
            if name.startswith(app + ".")]
        for path in trace_files(self.directory) + beside:
            if path in self._looked_at:
                continue
            try:
                header = read_header(path)
            except TraceError:
                if _header_line_complete(path):
                    self._looked_at.add(path)   # not a trace: never one of ours
                continue
            except OSError:
                continue
            self._looked_at.add(path)
            if header.get("parent") in parents:
                live = LiveExport(self.sender, self.span_over_ms, self.service, app_trace_id,
                                  len(self.followed))
                self.followed.append((path, Follower(path), live))
                parents.add(os.path.basename(path))

    def catch_up(self, deadline: float) -> None:
        """Read what every process wrote, until the end of each file or the deadline.  A
        child's trace that cannot be read any more is left (with a warning); the app's
        TraceError is the caller's."""
        for path, follower, live in list(self.followed):
            try:
                _catch_up(follower, live, deadline)
            except TraceError as e:
                if path == self.followed[0][0]:
                    raise
                print(f"loopscope: otlp: {e}; nothing more is sent of it", file=sys.stderr)
                follower.close()
                self.followed.remove((path, follower, live))

    def flush(self) -> None:
        for _, _, live in self.followed:
            live.flush()

    def unread(self) -> int:
        return sum(follower.size() - follower.offset for _, follower, _ in self.followed)

    def close(self) -> None:
        for _, follower, _ in self.followed:
            follower.close()

    @property
    def started(self) -> bool:
        return self.followed[0][2].started


def _header_line_complete(path: str) -> bool:
    """Whether the file's first line has been written in full (its writer may be mid-way)."""
    try:
        with open(path, "rb") as f:
            return f.readline(1 << 16).endswith(b"\n") or f.tell() >= 1 << 16
    except OSError:
        return False


def _app_exited(timeout_s: float | None) -> bool:
    """Wait up to ``timeout_s`` on stdin; True once the launcher closed it (the app exited)."""
    if not select.select([sys.stdin.fileno()], [], [], timeout_s)[0]:
        return False
    return os.read(sys.stdin.fileno(), 4096) == b""


def _catch_up(follower: Follower, live: LiveExport, deadline: float) -> None:
    """Read what the recorder has written, a chunk at a time so that batches keep going out
    on time, until the end of the file or the deadline."""
    while True:
        offset = follower.offset
        events = [ev for ev, _ in follower.poll(READ_BYTES)]  # may read the header first
        live.feed(follower.header, events)
        live.flush_if_due()
        if follower.offset == offset or time.monotonic() >= deadline:
            return


def follow(path: str, endpoint: str, span_over_ms: float | None, service: str | None) -> int:
    """Send the trace at ``path`` and its children's as they grow, until the app exits;
    returns the exit status."""
    sender = Sender(endpoint)
    processes = Processes(path, sender, span_over_ms, service)
    try:
        while not _app_exited(POLL_S):
            processes.catch_up(time.monotonic() + FLUSH_S)
            processes.find_children()
        drain_until = time.monotonic() + DRAIN_S
        while True:   # the app's children may have children of their own
            processes.catch_up(drain_until)
            followed = len(processes.followed)
            processes.find_children()
            if len(processes.followed) == followed or time.monotonic() >= drain_until:
                break
        unread = processes.unread()
    except TraceError as e:
        print(f"loopscope: otlp: {e}; nothing more is sent", file=sys.stderr)
        while not _app_exited(None):  # the app goes on: wait for it
            pass
        return 1
    finally:
        processes.close()
    processes.flush()
    sender.drain(drain_until - time.monotonic())
    if processes.started:
        report = sender.report(len(processes.followed))
        if unread > 0:
            report += f"; the last {unread} bytes of the trace were not read in time"
        print(report, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loopscope.otlp_live")
    parser.add_argument("trace")
    parser.add_argument("endpoint")
    parser.add_argument("--span-over", type=float)
    parser.add_argument("--service-name")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the sidecar ends when the app does, not before,
    # so that it can still send the end of the trace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return follow(args.trace, args.endpoint, args.span_over, args.service_name)


if __name__ == "__main__":
    raise SystemExit(main())
