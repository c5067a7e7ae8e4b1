"""``loopscope export``: a trace as Chrome trace-event JSON (opens in ui.perfetto.dev).

Mapping: loop callbacks and Deferred callbacks are complete ("X") slices on the reactor
thread, nested by time; thread-pool jobs are slices on their pool thread; stalls, marks,
errors and unhandled failures are instants ("i"); loop health is counters ("C"); Deferred
creation -> its first callback and callLater -> the timer's run are flows ("s"/"f").
The output is written as it is produced, so a large trace does not need to fit in memory.
"""

from __future__ import annotations

from typing import IO

import orjson

from tracer.model import UNKNOWN_SITE, Site, site_of
from tracer.reader import Warn, read_trace, warn_stderr

PID = 1
REACTOR_TID = 1
#: Timer flow ids are offset so they never collide with Deferred flow ids.
TIMER_FLOW = 1 << 40


def _us(ns: int) -> float:
    return ns / 1000.0


def export_chrome(path: str, out: IO[bytes], warn: Warn = warn_stderr) -> int:
    """Write ``path`` as Chrome trace JSON to ``out``; returns the number of trace events."""
    header, events = read_trace(path, warn)
    sites: dict[int, Site] = {}
    open_flows: set[int] = set()
    jobs: dict[int, tuple[int, int]] = {}
    job_fn: dict[int, int] = {}
    pool_threads: set[int] = set()
    count = 0
    first = True

    def emit(ev: dict) -> None:
        """Write one trace event.  It is serialised before anything is written, so an event
        that cannot be (an id past 64 bits) is skipped whole: the output stays valid JSON."""
        nonlocal count, first
        data = orjson.dumps(ev)
        out.write(b"\n" if first else b",\n")
        out.write(data)
        first = False
        count += 1

    def name(site_id: int) -> str:
        return sites.get(site_id, UNKNOWN_SITE).fn

    def where(site_id: int) -> dict:
        s = sites.get(site_id, UNKNOWN_SITE)
        return {"file": s.file, "line": s.line}

    out.write(b'{"displayTimeUnit":"ms","traceEvents":[')
    argv = " ".join(str(a) for a in header.get("argv", []))
    emit({"ph": "M", "name": "process_name", "pid": PID, "args": {"name": f"loopscope: {argv}"}})
    emit({"ph": "M", "name": "thread_name", "pid": PID, "tid": REACTOR_TID, "args": {"name": "reactor"}})
    for ev in events:
        kind = ev["ev"]
        t = ev.get("t", 0)
        try:
            if kind == "site":
                sites[ev["id"]] = site_of(ev)
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
                job_fn[ev["job"]] = ev.get("fn", 0)
            elif kind == "tstart":
                tid = ev.get("tid", 2)
                jobs[ev["job"]] = (t, tid)
                if tid not in pool_threads:
                    pool_threads.add(tid)
                    emit({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                          "args": {"name": f"pool thread {len(pool_threads)}"}})
            elif kind == "tdone" and ev["job"] in jobs:
                start, tid = jobs.pop(ev["job"])
                emit({"ph": "X", "name": name(job_fn.pop(ev["job"], 0)), "cat": "thread",
                      "ts": _us(start), "dur": _us(max(t - start, 0)), "pid": PID, "tid": tid,
                      "args": {"job": ev["job"], "exc": ev.get("exc")}})
            elif kind == "drop":
                emit({"ph": "i", "s": "g", "name": f"{ev['n']} events dropped", "cat": "drop",
                      "ts": _us(t), "pid": PID})
        except (KeyError, TypeError, ValueError, OverflowError):
            warn(f"an event of kind {kind!r} at t={t} is malformed; skipped")
    out.write(b"\n]}\n")
    return count
