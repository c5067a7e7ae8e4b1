"""The trace model: every event of a trace, and the state of the traced program at any event.

The dashboard shows "the state at the cursor"; the summary is the state at the end.  Both come
from one function of the events, :class:`StateBuilder`, applied in order.  :class:`TraceModel`
holds a whole trace compactly (the raw lines in one ``bytearray`` plus offset, time and kind
arrays; an event is parsed again when asked for) and keeps a snapshot of the builder every
:data:`CHECKPOINT_EVERY` events, so ``state_at(i)`` replays at most that many events.

All times are integer nanoseconds since the trace started, as in the file
(docs/trace-format.md).  The dataclasses below are what the UI reads; treat them as read-only.
"""

from __future__ import annotations

import copy
import math
import os
from array import array
from collections import OrderedDict
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Protocol, cast
from collections.abc import Callable, Iterable, Sequence


from tracer.format import INT_MAX, MAX_FRAMES, MAX_NAME, MAX_PATH, cut
from tracer.reader import (Warn, block_events, decode, iter_lines, open_trace, parse_event, parse_header,
                           read_header_line, warn_stderr)

#: Events between two snapshots of the state (bounds the work of one ``state_at``).
CHECKPOINT_EVERY = 8192
#: Finished thread jobs kept in the state (all running and queued ones are kept).
FINISHED_JOBS_KEPT = 200
#: Fired Deferreds remembered so a later ``dchain`` can still name where they were created.
RECENT_DEFERREDS = 1024
#: Callbacks nested in a loop-level call whose sites a Stall keeps (to name it after the user's
#: callback a framework function ran): the first few are the ones that matter.
NESTED_SITES_KEPT = 8
#: A timer that starts this much after its due time counts as late (``CallbackStats.late``):
#: well above the loop's own scheduling jitter, well below what a user notices.
LATE_NS = 10_000_000
#: A poll that returned within this long did not sleep (``DescriptorInfo.busy_polls``).
NO_SLEEP_NS = 100_000


@dataclass(frozen=True)
class Site:
    """A code location: ``fn`` is module + qualified name; ``line`` 0 when unknown."""
    fn: str
    file: str
    line: int


UNKNOWN_SITE = Site("?", "", 0)


def site_of(ev: dict) -> Site:
    """The Site a ``site`` event defines, its names bounded (tracer.format)."""
    return Site(cut(ev["fn"], MAX_NAME), cut(ev["file"], MAX_PATH), ev["line"])


@dataclass(frozen=True)
class Frame:
    """One stack frame of a stall sample or a traceback."""
    file: str
    line: int
    func: str


@dataclass
class DescriptorInfo:
    """A file descriptor the reactor watches, or a connection that is open."""
    fd: int
    type: str = ""
    reading: bool = False
    writing: bool = False
    role: str | None = None          # "server" / "client" for connections
    host: str | None = None
    peer: str | None = None
    bytes_in: int | None = None      # so far, from the latest ``bytes`` event
    bytes_out: int | None = None
    opened_ns: int = 0
    busy_polls: int = 0              # polls that returned at once with it writable, while
                                     # it was watched for writing (a writer with nothing to write
                                     # keeps the loop from sleeping)


@dataclass
class DeferredInfo:
    """A Deferred that has not fired yet, or that waits on another one."""
    id: int
    site: int
    created_ns: int
    n_callbacks: int = 0
    fired_ns: int | None = None
    waiting_on: int | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class UnhandledFailure:
    """A Deferred collected while holding a Failure; ``site`` is where it was created."""
    d: int
    site: int
    exc: str
    msg: str
    t_ns: int
    stack: tuple[Frame, ...]
    #: Where it was created and first fired, when defer.setDebugging(True) recorded them.
    created: tuple[Frame, ...] = ()
    invoked: tuple[Frame, ...] = ()


#: Histogram resolution: buckets per power of two of a duration (about 9% wide each).
_SUB = 8


def _bucket(ns: int) -> int:
    if ns < _SUB:
        return max(ns, 0)
    bits = ns.bit_length()
    return (bits - 3) * _SUB + (ns >> (bits - 4)) - _SUB


def _bucket_upper(b: int) -> int:
    if b < _SUB:
        return b
    bits = b // _SUB + 3
    return ((b % _SUB + _SUB + 1) << (bits - 4)) - 1


@dataclass
class CallbackStats:
    """Per-site statistics of the calls seen so far.

    ``p99_ns`` comes from a log histogram (about 9% resolution) so that the state stays small
    and cheap to snapshot; ``loopscope summary`` computes exact percentiles.
    """
    site: int
    kind: str
    count: int = 0
    total_ns: int = 0
    max_ns: int = 0
    blocking: int = 0
    hist: dict[int, int] = field(default_factory=dict)
    late: int = 0                    # timer runs that started more than LATE_NS late
    lag_max_ns: int = 0
    respawns: int = 0                # times it re-scheduled itself with no delay (a timer)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0

    @property
    def p99_ns(self) -> int:
        return self.percentile_ns(0.99)

    def percentile_ns(self, p: float) -> int:
        """The nearest-rank ``p`` percentile (``0.5`` is the median) from the histogram."""
        rank = max(math.ceil(p * self.count), 1)
        seen = 0
        for b in sorted(self.hist):
            seen += self.hist[b]
            if seen >= rank:
                return min(_bucket_upper(b), self.max_ns)
        return self.max_ns

    def binned(self, limits_ns: Sequence[int]) -> list[int]:
        """How many calls took at most ``limits_ns[0]``, then more than that up to
        ``limits_ns[1]``, and so on (the last limit takes everything longer too), from the
        histogram: a bucket counts in the first bin its upper end fits in."""
        counts = [0] * len(limits_ns)
        for b, n in self.hist.items():
            upper = _bucket_upper(b)
            counts[next((i for i, limit in enumerate(limits_ns) if upper <= limit),
                        len(limits_ns) - 1)] += n
        return counts


@dataclass(frozen=True)
class BlockingCall:
    """A call that ran longer than the threshold; ``t_ns`` is its start, ``index`` the event
    index of its ``call``/``dcall`` line, ``stack`` the last stall sample (innermost last),
    ``origin`` the site that scheduled it (timer) or created its Deferred (0 when unknown)."""
    site: int
    kind: str
    depth: int
    t_ns: int
    dur_ns: int
    stack: tuple[Frame, ...]
    index: int
    origin: int = 0


@dataclass(frozen=True)
class Stall:
    """One time the loop was blocked: a call the loop itself made (depth 0) that ran past the
    threshold.  ``chain`` holds the blocking calls nested in it, outermost first; ``stack`` is the
    latest stall sample taken while it ran, at whatever depth was running then (innermost last);
    ``nested_sites`` the sites of the first callbacks it ran in turn (a timer's
    ``Deferred.callback`` running the user's callback), in the order they started.
    :func:`tracer.names.stall_culprit` names it from these."""
    call: BlockingCall
    chain: tuple[BlockingCall, ...]
    stack: tuple[Frame, ...]
    nested_sites: tuple[int, ...]


@dataclass
class ThreadJob:
    """Work submitted to the thread pool."""
    job: int
    site: int
    submitted_ns: int
    started_ns: int | None = None
    done_ns: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LoopSample:
    """Loop health over the ``dt_ns`` (about 100 ms) before ``t_ns``."""
    t_ns: int
    dt_ns: int
    iterations: int
    busy_ratio: float
    lag_max_ms: float
    lag_mean_ms: float
    calls: int


@dataclass(frozen=True)
class RunningCall:
    """The callback the loop is stuck in at this moment (from the latest ``stall``)."""
    site: int
    kind: str
    depth: int
    since_ns: int
    blocked_ns: int
    stack: tuple[Frame, ...]


@dataclass(frozen=True)
class ErrorInfo:
    """An exception that escaped a loop callback (or the app's main code, kind "app")."""
    site: int
    kind: str
    exc: str
    msg: str
    t_ns: int
    stack: tuple[Frame, ...]


@dataclass(frozen=True)
class Mark:
    t_ns: int
    label: str


@dataclass(frozen=True)
class ChildTrace:
    """A child process forked while tracing: ``file`` is its own trace, beside this one
    (None when the child could not be traced)."""
    pid: int
    file: str | None


@dataclass
class TraceState:
    """The traced program's state after some prefix of the events."""
    t_ns: int = 0
    events: int = 0
    dropped: int = 0
    descriptors: dict[int, DescriptorInfo] = field(default_factory=dict)
    pending_deferreds: dict[int, DeferredInfo] = field(default_factory=dict)
    deferreds_created: int = 0
    deferreds_fired: int = 0
    unhandled: list[UnhandledFailure] = field(default_factory=list)
    #: Deferreds whose result is a failure no errback has handled yet: id -> (creation site,
    #: when it failed).  Handled ones leave; collected ones move to ``unhandled``.
    failing: dict[int, tuple[int, int]] = field(default_factory=dict)
    callbacks: dict[int, CallbackStats] = field(default_factory=dict)
    blocking: list[BlockingCall] = field(default_factory=list)   # every depth, in end order
    stalls: list[Stall] = field(default_factory=list)            # in time order
    threads: dict[int, ThreadJob] = field(default_factory=dict)
    loop: list[LoopSample] = field(default_factory=list)
    running: RunningCall | None = None
    errors: list[ErrorInfo] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    children: list[ChildTrace] = field(default_factory=list)
    reactor_running: bool = False
    ended: bool = False
    runtime: str = "reactor"         # the loop traced (a ``runtime`` event; tracer.format.RUNTIMES)
    runtime_unseen: str = ""         # what the tracer cannot see in that runtime


def frames(raw: object) -> tuple[Frame, ...]:
    """Stack triples from the file as Frames (the reader checked their types), bounded."""
    if not isinstance(raw, list):
        return ()
    return tuple(Frame(cut(f[0], MAX_PATH), f[1], cut(f[2], MAX_NAME))
                 for f in raw[-MAX_FRAMES:])


def _cut_or_none(text: str | None) -> str | None:
    return None if text is None else cut(text)


def running_of(stall: dict) -> RunningCall:
    """The call a ``stall`` event shows stuck."""
    return RunningCall(stall["site"], cut(stall["kind"]), stall["depth"], stall["since"],
                       stall["blocked"], frames(stall["stack"]))


def stall_of(call: BlockingCall, chain: Iterable[BlockingCall], nested: Iterable[tuple[int, int]],
             sample_since: int | None, sample_stack: object) -> Stall:
    """The Stall of loop-level blocking ``call``, from what was seen while it ran: the blocking
    calls and the (start, site) of the callbacks nested in it, and the latest stall sample."""
    stack = frames(sample_stack) if sample_since is not None and sample_since >= call.t_ns \
        else call.stack   # a sample from before this call belonged to an earlier one
    ordered = tuple(sorted((b for b in chain if b.t_ns >= call.t_ns),
                           key=lambda b: (b.t_ns, b.depth)))
    sites = tuple(site for start, site in sorted(nested) if start >= call.t_ns)
    return Stall(call, ordered, stack, sites)


class StateBuilder:
    """Applies events, in order, to a TraceState.

    ``threshold_ns`` decides what is blocking (the summary can re-evaluate with another one).
    With ``exact=True`` it keeps every duration per site (instead of the per-site histogram,
    so ``CallbackStats.p99_ns`` is not meaningful then) and every timer lag, for exact
    percentiles in the summary.
    """

    def __init__(self, threshold_ns: int, exact: bool = False) -> None:
        self.threshold_ns = threshold_ns
        self.state = TraceState()
        self.sites: dict[int, Site] = {}
        self._stalls: dict[tuple[int, int], dict] = {}   # (depth, since) -> latest stall event
        self._waiters: dict[int, int] = {}                # inner Deferred -> the one waiting on it
        self._timers: dict[int, int] = {}                 # pending timer id -> scheduling site
        #: Recently settled Deferreds, oldest first.  An OrderedDict: dropping the oldest entry
        #: of a plain dict (``next(iter(d))``) walks over every entry deleted before it, which
        #: made each settled Deferred cost a scan (a third of a summary's time).
        self._recent: OrderedDict[int, DeferredInfo] = OrderedDict()
        self._finished_jobs: list[int] = []
        # Within the loop-level call running now: the blocking calls nested in it, the
        # (start, site) of the callbacks nested in it, and its latest stall sample.
        self._chain: list[BlockingCall] = []
        self._nested: list[tuple[int, int]] = []
        self._sample: dict | None = None
        self.durations: dict[int, array] | None = {} if exact else None
        self.lags: array | None = array("q") if exact else None

    def snapshot(self) -> StateBuilder:
        """An independent copy, that goes on from here.  Its sites are its own: a site defined
        later in the trace must not change how the copy folds the events before it (whether a
        timer re-scheduled its own function compares the two sites' names)."""
        new = copy.copy(self)
        new.sites = dict(self.sites)
        new.state = self.state_copy()
        new._stalls = dict(self._stalls)
        new._waiters = dict(self._waiters)
        new._timers = dict(self._timers)
        new._recent = OrderedDict(self._recent)  # values are never changed in place (see _dchain)
        new._finished_jobs = list(self._finished_jobs)
        new._chain = list(self._chain)
        new._nested = list(self._nested)
        return new

    def state_copy(self) -> TraceState:
        """A copy of the state so far, that the caller may keep."""
        s = self.state
        return TraceState(
            t_ns=s.t_ns, events=s.events, dropped=s.dropped,
            descriptors={k: copy.copy(v) for k, v in s.descriptors.items()},
            pending_deferreds={k: copy.copy(v) for k, v in s.pending_deferreds.items()},
            deferreds_created=s.deferreds_created, deferreds_fired=s.deferreds_fired,
            unhandled=list(s.unhandled), failing=dict(s.failing),
            callbacks={k: CallbackStats(v.site, v.kind, v.count, v.total_ns, v.max_ns, v.blocking,
                                        dict(v.hist), v.late, v.lag_max_ns, v.respawns)
                       for k, v in s.callbacks.items()},
            blocking=list(s.blocking), stalls=list(s.stalls),
            threads={k: copy.copy(v) for k, v in s.threads.items()},
            loop=list(s.loop), running=s.running, errors=list(s.errors), marks=list(s.marks),
            children=list(s.children),
            reactor_running=s.reactor_running, ended=s.ended, runtime=s.runtime,
            runtime_unseen=s.runtime_unseen,
        )

    def apply(self, ev: dict, index: int) -> None:
        """Apply event number ``index`` (its position in the trace, header excluded)."""
        s = self.state
        s.events += 1
        t = ev.get("t")
        if isinstance(t, int) and t > s.t_ns:
            s.t_ns = t
        self.handle(ev, index)

    def handle(self, ev: dict, index: int) -> None:
        """Apply what event ``index`` changes beyond the count and the time (a compiled fold,
        tracer.scan, counts events itself and folds the frequent kinds)."""
        handler = _HANDLERS.get(ev["ev"])
        if handler is not None:
            try:
                handler(self, ev, index)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                pass  # a damaged event changes nothing; the reader already kept only valid JSON

    # -- calls -----------------------------------------------------------------
    def _ended(self, ev: dict, index: int, kind: str, origin: int) -> None:
        s = self.state
        site, dur, depth = ev["site"], ev["dur"], ev.get("depth", 0)
        start = ev["t"] - dur
        stats = s.callbacks.get(site)
        if stats is None:
            stats = s.callbacks[site] = CallbackStats(site, kind)
        stats.count += 1
        stats.total_ns += dur
        if dur > stats.max_ns:
            stats.max_ns = dur
        if self.durations is None:
            b = _bucket(dur)
            stats.hist[b] = stats.hist.get(b, 0) + 1
        else:  # exact mode keeps every duration instead of the histogram
            durations = self.durations.get(site)
            if durations is None:
                durations = self.durations[site] = array("q")
            durations.append(dur)
        stall = self._stalls.pop((depth, start), None) if self._stalls else None
        blocking = None
        if dur > self.threshold_ns:
            stats.blocking += 1
            blocking = BlockingCall(site, kind, depth, start, dur,
                                    frames(stall["stack"]) if stall else (), index, origin)
            s.blocking.append(blocking)
        if depth > 0:
            if blocking is not None:
                self._chain.append(blocking)
            if len(self._nested) < NESTED_SITES_KEPT:
                self._nested.append((start, site))
        else:
            if blocking is not None:
                self._stall_ended(blocking)
            self._chain, self._nested, self._sample = [], [], None
        if self._stalls:
            for key in [k for k in self._stalls if k[0] >= depth]:
                del self._stalls[key]
        if s.running is not None and s.running.depth >= depth:
            s.running = None

    def _stall_ended(self, call: BlockingCall) -> None:
        sample = self._sample
        self.state.stalls.append(stall_of(call, self._chain, self._nested,
                                          None if sample is None else sample["since"],
                                          None if sample is None else sample["stack"]))

    def _call(self, ev: dict, index: int) -> None:
        origin = self._timers.pop(ev["timer"], 0) if "timer" in ev else 0
        self._ended(ev, index, cut(ev["kind"]), origin)
        lag = ev.get("lag")
        if lag is not None:
            stats = self.state.callbacks[ev["site"]]
            if lag > LATE_NS:
                stats.late += 1
            if lag > stats.lag_max_ns:
                stats.lag_max_ns = lag
            if self.lags is not None:
                self.lags.append(lag)

    def _dcall(self, ev: dict, index: int) -> None:
        d = ev["d"]
        s = self.state
        info = s.pending_deferreds.get(d) or self._recent.get(d)
        self._ended(ev, index, "deferred", info.site if info is not None else 0)
        if ev["fail"]:
            s.failing[d] = (info.site if info is not None else 0, ev["t"])
        else:
            s.failing.pop(d, None)

    def _timer(self, ev: dict, index: int) -> None:
        site, fn = ev.get("site", 0), ev["fn"]
        self._timers[ev["id"]] = site
        due = ev.get("due")
        if due is not None and due - ev["t"] < NO_SLEEP_NS and site and fn and \
                self.sites.get(site, UNKNOWN_SITE).fn == self.sites.get(fn, UNKNOWN_SITE).fn:
            # scheduled from inside the function it runs, to run at once: a loop made of timers
            stats = self.state.callbacks.get(fn)
            if stats is None:
                stats = self.state.callbacks[fn] = CallbackStats(fn, "timer")
            stats.respawns += 1

    def _tcancel(self, ev: dict, index: int) -> None:
        self._timers.pop(ev["id"], None)

    def _stall(self, ev: dict, index: int) -> None:
        self._stalls[(ev["depth"], ev["since"])] = ev
        self._sample = ev
        self.state.running = running_of(ev)

    # -- Deferreds -----------------------------------------------------------------
    def _dnew(self, ev: dict, index: int) -> None:
        s = self.state
        s.deferreds_created += 1
        s.pending_deferreds[ev["d"]] = DeferredInfo(ev["d"], ev.get("site", 0), ev["t"])

    def _dadd(self, ev: dict, index: int) -> None:
        info = self.state.pending_deferreds.get(ev["d"])
        if info is not None:
            info.n_callbacks += 1

    def _settle(self, info: DeferredInfo) -> None:
        """A fired Deferred that waits on nothing is no longer pending."""
        if info.fired_ns is not None and info.waiting_on is None:
            del self.state.pending_deferreds[info.id]
            self._recent[info.id] = info
            if len(self._recent) > RECENT_DEFERREDS:
                self._recent.popitem(last=False)

    def _dfire(self, ev: dict, index: int) -> None:
        s = self.state
        s.deferreds_fired += 1
        d = ev["d"]
        if ev["fail"]:
            info = s.pending_deferreds.get(d)
            s.failing[d] = (info.site if info is not None else 0, ev["t"])
        info = s.pending_deferreds.get(d)
        if info is not None:
            info.fired_ns = ev["t"]
            self._settle(info)
        outer = self._waiters.pop(d, None)
        if outer is not None:
            waiting = s.pending_deferreds.get(outer)
            if waiting is not None and waiting.waiting_on == d:
                waiting.waiting_on = None
                self._settle(waiting)

    def _dchain(self, ev: dict, index: int) -> None:
        s = self.state
        outer, inner = ev["d"], ev["inner"]
        inner_info = s.pending_deferreds.get(inner)
        if inner_info is None or inner_info.fired_ns is not None:
            return  # inner already has its result: outer goes straight on
        info = s.pending_deferreds.get(outer)
        if info is None and outer in self._recent:
            info = copy.copy(self._recent.pop(outer))  # snapshots share _recent's values
        if info is None:
            info = DeferredInfo(outer, 0, ev["t"], fired_ns=ev["t"])
        info.waiting_on = inner
        s.pending_deferreds[outer] = info
        self._waiters[inner] = outer

    def _dcancel(self, ev: dict, index: int) -> None:
        info = self.state.pending_deferreds.get(ev["d"])
        if info is not None:
            info.cancelled = True

    def _unhandled(self, ev: dict, index: int) -> None:
        s = self.state
        s.pending_deferreds.pop(ev["d"], None)
        s.failing.pop(ev["d"], None)
        s.unhandled.append(UnhandledFailure(ev["d"], ev.get("site", 0), cut(ev["exc"]),
                                            cut(ev.get("msg", "")), ev["t"], frames(ev.get("stack")),
                                            frames(ev.get("created")), frames(ev.get("invoked"))))

    # -- descriptors, connections --------------------------------------------------
    def _fd(self, fd: int, t: int) -> DescriptorInfo:
        info = self.state.descriptors.get(fd)
        if info is None:
            info = self.state.descriptors[fd] = DescriptorInfo(fd, opened_ns=t)
        return info

    def _fdadd(self, ev: dict, index: int) -> None:
        info = self._fd(ev["fd"], ev["t"])
        info.type = cut(ev.get("type", info.type))
        if ev["mode"] == "r":
            info.reading = True
        else:
            info.writing = True

    def _poll(self, ev: dict, index: int) -> None:
        if ev["wait"] >= NO_SLEEP_NS:
            return
        descriptors = self.state.descriptors
        for fd, mask in ev["ready"]:
            if mask & 2:
                info = descriptors.get(fd)
                if info is not None and info.writing:
                    info.busy_polls += 1

    def _fdrm(self, ev: dict, index: int) -> None:
        info = self.state.descriptors.get(ev["fd"])
        if info is None:
            return
        if ev["mode"] == "r":
            info.reading = False
        else:
            info.writing = False
        if not (info.reading or info.writing or info.role):
            del self.state.descriptors[info.fd]

    def _conn(self, ev: dict, index: int) -> None:
        info = self._fd(ev["fd"], ev["t"])
        info.role, info.host, info.peer = (_cut_or_none(ev.get(name)) for name in ("role", "host", "peer"))
        info.opened_ns = ev["t"]

    def _bytes(self, ev: dict, index: int) -> None:
        info = self.state.descriptors.get(ev["fd"])
        if info is not None and info.role:   # a sample that came after its close is not kept
            info.bytes_in, info.bytes_out = ev["in"], ev["out"]

    def _close(self, ev: dict, index: int) -> None:
        self.state.descriptors.pop(ev["fd"], None)

    # -- threads -----------------------------------------------------------------------
    def _tsub(self, ev: dict, index: int) -> None:
        self.state.threads[ev["job"]] = ThreadJob(ev["job"], ev.get("fn", 0), ev["t"])

    def _tstart(self, ev: dict, index: int) -> None:
        job = self.state.threads.get(ev["job"])
        if job is not None:
            job.started_ns = ev["t"]

    def _tdone(self, ev: dict, index: int) -> None:
        threads = self.state.threads
        job = threads.get(ev["job"])
        if job is None:
            return
        job.done_ns = ev["t"]
        if "exc" in ev:
            job.error = cut(f"{ev['exc']}: {ev.get('msg', '')}")
        self._finished_jobs.append(job.job)
        if len(self._finished_jobs) > FINISHED_JOBS_KEPT:
            threads.pop(self._finished_jobs.pop(0), None)

    # -- the rest ------------------------------------------------------------------------
    def _site(self, ev: dict, index: int) -> None:
        self.sites[ev["id"]] = site_of(ev)

    def _loop(self, ev: dict, index: int) -> None:
        dt = ev["dt"] or 1
        iterations = max(ev["it"], 0)  # a count: a damaged trace's negative one is none
        self.state.loop.append(LoopSample(ev["t"], dt, iterations, min(max(ev["busy"] / dt, 0.0), 1.0),
                                          ev["lag_max"] / 1e6, ev["lag_mean"] / 1e6, ev["calls"]))

    def _error(self, ev: dict, index: int) -> None:
        self.state.errors.append(ErrorInfo(ev.get("site", 0), cut(ev.get("kind", "")), cut(ev["exc"]),
                                           cut(ev.get("msg", "")), ev["t"], frames(ev.get("stack"))))

    def _mark(self, ev: dict, index: int) -> None:
        self.state.marks.append(Mark(ev["t"], cut(ev["label"])))

    def _child(self, ev: dict, index: int) -> None:
        self.state.children.append(ChildTrace(ev["pid"], ev["file"]))

    def _drop(self, ev: dict, index: int) -> None:
        # A damaged trace's counts may be negative, or add up past what int64 holds.
        self.state.dropped = min(self.state.dropped + max(ev["n"], 0), INT_MAX)

    def _runtime(self, ev: dict, index: int) -> None:
        self.state.runtime = cut(ev["name"])
        self.state.runtime_unseen = cut(ev.get("unseen", ""))

    def _reactor(self, ev: dict, index: int) -> None:
        self.state.reactor_running = ev["state"] == "running"
        if not self.state.reactor_running:
            self.state.running = None

    def _end(self, ev: dict, index: int) -> None:
        self.state.ended = True
        self.state.running = None
        self.state.dropped = max(self.state.dropped, ev.get("dropped", 0))


_HANDLERS: dict[str, Callable[[StateBuilder, dict, int], None]] = {
    name: getattr(StateBuilder, "_" + name) for name in (
        "call", "dcall", "timer", "tcancel", "stall", "dnew", "dadd", "dfire", "dchain", "dcancel", "unhandled",
        "fdadd", "fdrm", "poll", "conn", "bytes", "close", "tsub", "tstart", "tdone", "site", "loop", "error",
        "mark", "child", "drop", "runtime", "reactor", "end")
}


def threshold_ns_of(header: dict) -> int:
    """The blocking threshold a trace header gives, in nanoseconds (50 ms when it has none)."""
    threshold = header.get("threshold_ms", 50.0)
    return int(float(threshold) * 1e6) if isinstance(threshold, (int, float)) else 50_000_000


class Model(Protocol):
    """What the dashboard reads of a trace: its events by index and the state at any of
    them.  :class:`TraceModel` holds it in Python; ``tracer.indexed.IndexedModel`` on the
    compiled fold, for big traces."""
    header: dict
    threshold_ns: int

    def add_block(self, first_lineno: int, offset: int, block: bytes) -> None:
        """Take the complete lines of ``block``, which starts at byte ``offset`` of the
        trace, its first line numbered ``first_lineno`` (the lines that follow those held)."""

    def __len__(self) -> int: ...

    def event(self, i: int) -> dict:
        """The i-th event (header excluded)."""

    def time_ns(self, i: int) -> int:
        """Time of event i, clamped so that times never decrease."""

    def kind(self, i: int) -> str: ...

    def index_at(self, t_ns: int) -> int:
        """Number of events with ``t <= t_ns``."""

    @property
    def duration_ns(self) -> int: ...

    @property
    def sites(self) -> dict[int, Site]: ...

    def site(self, site_id: int) -> Site: ...

    @property
    def state(self) -> TraceState:
        """The state after every event held (the live edge); do not modify it."""

    def state_at(self, i: int) -> TraceState:
        """The state after the first ``i`` events: a snapshot the caller may keep."""


class TraceModel:
    """A whole trace in memory, compactly, with the state at any event index.

    Memory: the raw lines (one bytearray), plus 18 bytes of arrays per event, plus one state
    snapshot per :data:`CHECKPOINT_EVERY` events.
    """

    def __init__(self, header: dict, warn: Warn = warn_stderr) -> None:
        self.header = header
        self.threshold_ns = threshold_ns_of(header)
        self._warn = warn
        self._data = bytearray()
        self._offsets = array("q", [0])
        self._times = array("q")
        self._kinds = array("H")
        self._kind_names: list[str] = []
        self._kind_codes: dict[str, int] = {}
        self._builder = StateBuilder(self.threshold_ns)
        self._checkpoints: list[StateBuilder] = [self._builder.snapshot()]
        self._cache: tuple[int, StateBuilder] | None = None

    @classmethod
    def load(cls, path: str, progress: Callable[[int, int], None] | None = None,
             warn: Warn = warn_stderr) -> TraceModel:
        """Read a whole trace file; ``progress(bytes_done, bytes_total)`` is called as it goes."""
        with open_trace(path) as f:
            model = cls(parse_header(read_header_line(f, path), path), warn)
            total = os.fstat(f.fileno()).st_size
            add = model._add
            for lineno, line in iter_lines(f, warn):
                event = parse_event(line, lineno, warn)
                if event is not None:
                    add(event, line)
                if progress is not None and lineno % 65536 == 0:
                    progress(min(f.tell(), total), total)
            if progress is not None:
                progress(total, total)
        return model

    def add_block(self, first_lineno: int, offset: int, block: bytes) -> None:
        """Parse and hold the complete lines of ``block`` (bad ones are warned about)."""
        self.append(block_events(block, first_lineno, self._warn))

    def append(self, events: Iterable[tuple[dict, bytes]]) -> None:
        """Add ``(event, line)`` pairs that follow the events held (live follow, or a load in
        chunks); the line is kept as read, never encoded again."""
        add = self._add
        for event, line in events:
            add(event, line)

    def _add(self, event: dict, line: bytes) -> None:
        """Hold one event: its line as read (without the newline) and its time and kind."""
        index = len(self._times)
        t = event.get("t", 0)
        if not isinstance(t, int):
            t = 0
        if index and t < self._times[-1]:
            t = self._times[-1]
        self._data += line
        self._data += b"\n"
        self._offsets.append(len(self._data))
        self._times.append(t)
        kind = event["ev"]
        code = self._kind_codes.get(kind)
        if code is None:
            code = min(len(self._kind_names), 65535)
            self._kind_codes[kind] = code
            self._kind_names.append(kind)
        self._kinds.append(code)
        self._builder.apply(event, index)
        if (index + 1) % CHECKPOINT_EVERY == 0:
            self._checkpoints.append(self._builder.snapshot())

    def __len__(self) -> int:
        return len(self._times)

    def event(self, i: int) -> dict:
        """The i-th event (header excluded), parsed from its stored line."""
        return cast(dict, decode(self._data[self._offsets[i]:self._offsets[i + 1]]))  # checked

    def time_ns(self, i: int) -> int:
        """Time of event i, clamped so that times never decrease."""
        return self._times[i]

    def kind(self, i: int) -> str:
        return self._kind_names[self._kinds[i]]

    def index_at(self, t_ns: int) -> int:
        """Number of events with ``t <= t_ns``."""
        return bisect_right(self._times, t_ns)

    @property
    def duration_ns(self) -> int:
        return self._times[-1] if self._times else 0

    @property
    def sites(self) -> dict[int, Site]:
        return self._builder.sites

    def site(self, site_id: int) -> Site:
        return self._builder.sites.get(site_id, UNKNOWN_SITE)

    @property
    def state(self) -> TraceState:
        """The state after every event held (the live edge), without a copy: the cheap way
        to show the live state.  It changes as events are appended; do not modify it."""
        return self._builder.state

    def state_at(self, i: int) -> TraceState:
        """The state after the first ``i`` events: a snapshot the caller may keep."""
        n = len(self._times)
        if not 0 <= i <= n:
            raise IndexError(f"event index {i} outside 0..{n}")
        if i == n:
            return self._builder.state_copy()
        cached = self._cache
        if cached is not None and cached[0] <= i and i - cached[0] < CHECKPOINT_EVERY:
            start, builder = cached
        else:
            start = i // CHECKPOINT_EVERY * CHECKPOINT_EVERY
            builder = self._checkpoints[start // CHECKPOINT_EVERY].snapshot()
        for j in range(start, i):
            builder.apply(self.event(j), j)
        self._cache = (i, builder)
        return builder.state_copy()
