"""``loopscope export``: a trace as Chrome trace-event JSON (opens in ui.perfetto.dev).

Mapping: loop callbacks and Deferred callbacks are complete ("X") slices on the reactor
thread, nested by time; thread-pool jobs are slices on their pool thread; stalls, marks,
errors and unhandled failures are instants ("i"); loop health is counters ("C"); Deferred
creation -> its first callback and callLater -> the timer's run are flows ("s"/"f").
The output is written as it is produced, so a large trace does not need to fit in memory:
what is kept is the sites, the flows still open and the pool's jobs, never the events.  Where
``tracer._scan`` is built, its writer writes the frequent compact rows (calls, Deferred
callbacks, their flows) itself, the same bytes, and hands every other line to the Python step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Protocol

import orjson

from tracer.model import UNKNOWN_SITE, Site, site_of
from tracer.reader import (
    Warn,
    iter_blocks,
    iter_events,
    open_trace,
    parse_header,
    parse_line,
    read_header_line,
    warn_stderr,
)
from tracer.scan import compiled as _scan

PID = 1
REACTOR_TID = 1
#: Timer flow ids are offset so they never collide with Deferred flow ids.
TIMER_FLOW = 1 << 40


def _us(ns: int) -> float:
    return ns / 1000.0


class Flows(Protocol):
    """The flows started and not yet ended (a set, or the compiled writer's own)."""

    def add(self, flow: int) -> None: ...
    def discard(self, flow: int) -> None: ...
    def __contains__(self, flow: object) -> bool: ...


class _Chrome:
    """The export of one event at a time: what it emits, and what it must remember (sites,
    open flows, pool threads and their jobs)."""

    def __init__(self, emit: Callable[[bytes], None], open_flows: Flows, warn: Warn,
                 on_site: Callable[[int, Site], None] | None = None) -> None:
        self._emit = emit
        self.open_flows = open_flows
        self._warn = warn
        self._on_site = on_site
        self.sites: dict[int, Site] = {}
        self.jobs: dict[int, tuple[int, int]] = {}
        self.job_fn: dict[int, int] = {}
        self.pool_threads: set[int] = set()

    def emit(self, ev: dict) -> None:
        """Write one trace event.  It is serialised before anything is written, so an event
        that cannot be (an id past 64 bits) is skipped whole: the output stays valid JSON."""
        self._emit(orjson.dumps(ev))

    def name(self, site_id: int) -> str:
        return self.sites.get(site_id, UNKNOWN_SITE).fn

    def where(self, site_id: int) -> dict:
        s = self.sites.get(site_id, UNKNOWN_SITE)
        return {"file": s.file, "line": s.line}

    def step(self, ev: dict) -> None:
        """Export one event (a malformed one is skipped with a warning)."""
        emit, name, where, open_flows = self.emit, self.name, self.where, self.open_flows
        kind = ev["ev"]
        t = ev.get("t", 0)
        try:
            if kind == "site":
                site = self.sites[ev["id"]] = site_of(ev)
                if self._on_site is not None:
                    self._on_site(ev["id"], site)
            elif kind == "call" or kind == "dcall":
                dur = max(ev["dur"], 0)  # a negative duration is damage: a zero-length slice
                start = t - dur
                cat = ev["kind"] if kind == "call" else "deferred"
                args = where(ev["site"]) | {"depth": ev.get("depth", 0)}
                if "exc" in ev:
                    args["exc"] = ev["exc"]
                emit({"ph": "X", "name": name(ev["site"]), "cat": cat, "ts": _us(start),
                      "dur": _us(dur), "pid": PID, "tid": REACTOR_TID, "args": args})
                flow = ev.get("timer", 0) + TIMER_FLOW if kind == "call" and ev.get("timer") else (
                    ev["d"] if kind == "dcall" else None)
                if flow is not None and flow in open_flows:
                    open_flows.discard(flow)
                    emit({"ph": "f", "bp": "e", "id": flow, "name": cat, "cat": "flow",
                          "ts": _us(start), "pid": PID, "tid": REACTOR_TID})
            elif kind == "dnew" or kind == "timer":
                flow = ev["d"] if kind == "dnew" else ev["id"] + TIMER_FLOW
                open_flows.add(flow)
                emit({"ph": "s", "id": flow, "name": "deferred" if kind == "dnew" else "timer",
                      "cat": "flow", "ts": _us(t), "pid": PID, "tid": REACTOR_TID})
            elif kind == "stall":
                emit({"ph": "i", "s": "t", "name": f"stall: {name(ev['site'])}", "cat": "stall",
                      "ts": _us(t), "pid": PID, "tid": REACTOR_TID,
                      "args": {"blocked_ms": ev["blocked"] / 1e6,
                               "stack": [f"{f[0]}:{f[1]} {f[2]}" for f in ev.get("stack", [])]}})
            elif kind == "mark":
                emit({"ph": "i", "s": "g", "name": ev["label"], "cat": "mark", "ts": _us(t), "pid": PID})
            elif kind == "error" or kind == "unhandled":
                emit({"ph": "i", "s": "t", "name": f"{kind}: {ev['exc']}", "cat": kind, "ts": _us(t),
                      "pid": PID, "tid": REACTOR_TID, "args": {"msg": ev.get("msg", "")}})
            elif kind == "loop":
                dt = ev["dt"] or 1
                emit({"ph": "C", "name": "loop", "ts": _us(t), "pid": PID,
                      "args": {"busy %": round(100 * ev["busy"] / dt, 1),
                               "lag max ms": ev["lag_max"] / 1e6, "iterations": ev["it"]}})
            elif kind == "tsub":
                self.job_fn[ev["job"]] = ev.get("fn", 0)
            elif kind == "tstart":
                tid = ev.get("tid", 2)
                self.jobs[ev["job"]] = (t, tid)
                if tid not in self.pool_threads:
                    self.pool_threads.add(tid)
                    emit({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                          "args": {"name": f"pool thread {len(self.pool_threads)}"}})
            elif kind == "tdone" and ev["job"] in self.jobs:
                start, tid = self.jobs.pop(ev["job"])
                emit({"ph": "X", "name": name(self.job_fn.pop(ev["job"], 0)), "cat": "thread",
                      "ts": _us(start), "dur": _us(max(t - start, 0)), "pid": PID, "tid": tid,
                      "args": {"job": ev["job"], "exc": ev.get("exc")}})
            elif kind == "drop":
                emit({"ph": "i", "s": "g", "name": f"{ev['n']} events dropped", "cat": "drop",
                      "ts": _us(t), "pid": PID})
        except (KeyError, TypeError, ValueError, OverflowError):
            self._warn(f"an event of kind {kind!r} at t={t} is malformed; skipped")


def export_chrome(path: str, out: IO[bytes], warn: Warn = warn_stderr,
                  compiled: bool | None = None) -> int:
    """Write ``path`` as Chrome trace JSON to ``out``; returns the number of trace events.

    ``compiled`` chooses the writer (default: ``tracer._scan``'s when it is built, which
    writes the frequent rows itself, the same bytes, and hands the rest to the Python step).
    """
    with open_trace(path) as f:
        header = parse_header(read_header_line(f, path), path)
        out.write(b'{"displayTimeUnit":"ms","traceEvents":[')
        argv = " ".join(str(a) for a in header.get("argv", []))
        opening = [{"ph": "M", "name": "process_name", "pid": PID, "args": {"name": f"loopscope: {argv}"}},
                   {"ph": "M", "name": "thread_name", "pid": PID, "tid": REACTOR_TID,
                    "args": {"name": "reactor"}}]
        if _scan is not None and compiled is not False:
            count = _export_compiled(f, out, opening, warn)
        else:
            count = _export_python(f, out, opening, warn)
    out.write(b"\n]}\n")
    return count


def _export_python(f: IO[bytes], out: IO[bytes], opening: list[dict], warn: Warn) -> int:
    count = 0

    def emit(data: bytes) -> None:
        nonlocal count
        out.write(b",\n" if count else b"\n")
        out.write(data)
        count += 1

    chrome = _Chrome(emit, set(), warn)
    for ev in opening:
        chrome.emit(ev)
    for event in iter_events(f, warn):
        chrome.step(event)
    return count


def _export_compiled(f: IO[bytes], out: IO[bytes], opening: list[dict], warn: Warn) -> int:
    assert _scan is not None

    def fragments(site: Site) -> tuple[bytes, bytes]:
        return orjson.dumps(site.fn), orjson.dumps({"file": site.file, "line": site.line})

    def slow(line: bytes, lineno: int) -> None:
        event = parse_line(line, lineno, warn)
        if event is not None:
            chrome.step(event)

    writer = _scan.Exporter(out.write, slow, *fragments(UNKNOWN_SITE))
    chrome = _Chrome(writer.emit, writer, warn,
                     on_site=lambda site_id, site: writer.site(site_id, *fragments(site)))
    for ev in opening:
        chrome.emit(ev)
    for lineno, block in iter_blocks(f, warn):
        writer.feed(block, lineno)
    return writer.flush()
