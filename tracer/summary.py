"""``loopscope summary``: what blocked the loop, per-callback statistics, Deferred health.

The JSON shape is a contract (DESIGN.md, "summary --json"): scripts and CI parse it.  The
summary is one streaming pass of :class:`tracer.model.StateBuilder` over the file — the same
state the dashboard shows at the last event — with exact percentiles.
"""

from __future__ import annotations

import math
from array import array

from tracer.model import UNKNOWN_SITE, Site, StateBuilder
from tracer.reader import Warn, read_trace, warn_stderr


def percentile(sorted_values: array | list, p: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(math.ceil(p * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def _ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def pending_word(runtime: str) -> str:
    """What a runtime calls the things that are pending until they fire (tracer.format
    RUNTIMES): a reactor's Deferreds are asyncio's Tasks (and Futures).  Only the words
    change: the JSON keys stay ``deferreds`` (docs/asyncio.md)."""
    return "Tasks" if runtime in ("asyncio", "uvloop") else "Deferreds"


class Summary(dict):
    """The JSON contract's dict, and what the text says beyond its keys: the runtime traced
    (for its words) and what the tracer cannot see in it."""

    runtime: str = "reactor"
    unseen: str = ""


def summarize(path: str, threshold_ms: float | None = None, warn: Warn = warn_stderr) -> dict:
    """The summary of a trace file as the JSON-contract dict.

    ``threshold_ms`` re-evaluates what is blocking (default: the threshold it was recorded
    with).  Stacks exist only for calls the watchdog saw past the recording threshold.
    """
    header, events = read_trace(path, warn)
    if threshold_ms is None:
        recorded = header.get("threshold_ms", 50.0)
        threshold_ms = float(recorded) if isinstance(recorded, (int, float)) else 50.0
    builder = StateBuilder(int(threshold_ms * 1e6), exact=True)
    apply = builder.apply
    for index, event in enumerate(events):
        apply(event, index)
    state = builder.state
    sites = builder.sites

    def site(site_id: int) -> Site:
        return sites.get(site_id, UNKNOWN_SITE)

    lags = sorted(builder.lags or ())
    samples = state.loop
    blocking = sorted(state.blocking, key=lambda b: (-b.dur_ns, b.t_ns))
    callbacks = []
    for stats in sorted(state.callbacks.values(), key=lambda c: -c.total_ns):
        s = site(stats.site)
        durations = sorted(builder.durations.get(stats.site, ())) if builder.durations else []
        callbacks.append({
            "fn": s.fn, "file": s.file, "line": s.line, "kind": stats.kind, "count": stats.count,
            "total_ms": _ms(stats.total_ns), "mean_ms": _ms(stats.mean_ns),
            "p99_ms": _ms(percentile(durations, 0.99)), "max_ms": _ms(stats.max_ns),
            "blocking": stats.blocking,
        })
    result = Summary({
        "events": state.events - (1 if state.ended else 0),
        "dropped": state.dropped,
        "duration_ms": _ms(state.t_ns),
        "threshold_ms": float(threshold_ms),
        "loop": {
            "iterations": sum(x.iterations for x in samples),
            "busy_ratio": round(sum(x.busy_ratio for x in samples) / len(samples), 4) if samples else 0.0,
            "lag_p50_ms": _ms(percentile(lags, 0.5)),
            "lag_p99_ms": _ms(percentile(lags, 0.99)),
            "lag_max_ms": _ms(lags[-1] if lags else 0),
        },
        "blocking": [
            {"fn": site(b.site).fn, "file": site(b.site).file, "line": site(b.site).line,
             "kind": b.kind, "depth": b.depth, "t_ms": _ms(b.t_ns), "dur_ms": _ms(b.dur_ns),
             "stack": [{"file": f.file, "line": f.line, "func": f.func} for f in b.stack]}
            for b in blocking
        ],
        "callbacks": callbacks,
        "deferreds": {
            "created": state.deferreds_created,
            "fired": state.deferreds_fired,
            "pending": len(state.pending_deferreds),
            "unhandled": [
                {"fn": site(u.site).fn, "file": site(u.site).file, "line": site(u.site).line,
                 "exc": u.exc, "msg": u.msg}
                for u in state.unhandled
            ],
        },
        "errors": [{"fn": site(e.site).fn, "exc": e.exc, "msg": e.msg} for e in state.errors],
    })
    result.runtime, result.unseen = state.runtime, state.runtime_unseen
    return result


def _clean(text: str) -> str:
    """Trace text is data: no control characters reach the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def format_text(summary: dict, top: int = 15) -> str:
    """A readable report of a summary dict, for a terminal (in its runtime's words)."""
    runtime = getattr(summary, "runtime", "reactor")
    unseen = getattr(summary, "unseen", "")
    loop = summary["loop"]
    lines = [
        f"{summary['events']} events over {summary['duration_ms'] / 1000:.2f} s, "
        f"{summary['dropped']} dropped, threshold {summary['threshold_ms']:g} ms"
        + ("" if runtime == "reactor" else f", on {runtime}"),
        f"loop: {loop['iterations']} iterations, busy {loop['busy_ratio'] * 100:.1f}%, "
        f"timer lag p50 {loop['lag_p50_ms']:.2f} ms, p99 {loop['lag_p99_ms']:.2f} ms, "
        f"max {loop['lag_max_ms']:.2f} ms",
    ]
    if unseen:
        lines.append(f"not seen on {runtime}: {_clean(unseen)}")
    lines.append("")
    blocking = summary["blocking"]
    if blocking:
        lines.append(f"Blocking callbacks ({len(blocking)}), longest first:")
        lines.append(f"  {'ms':>9}  {'at s':>7}  {'kind':<8} {'depth':>5}  callback")
        for b in blocking[:top]:
            lines.append(f"  {b['dur_ms']:9.1f}  {b['t_ms'] / 1000:7.2f}  {b['kind']:<8} {b['depth']:>5}  "
                         f"{_clean(b['fn'])} ({_clean(b['file'])}:{b['line']})")
            if b["stack"]:
                f = b["stack"][-1]
                lines.append(f"  {'':>9}  {'':>7}  blocked in {_clean(f['func'])} "
                             f"({_clean(f['file'])}:{f['line']})")
        if len(blocking) > top:
            lines.append(f"  … {len(blocking) - top} more (--json lists all)")
    else:
        lines.append("No blocking callbacks.")
    lines.append("")
    lines.append("Callbacks by total time:")
    lines.append(f"  {'count':>7} {'total ms':>10} {'mean ms':>9} {'p99 ms':>9} {'max ms':>9} {'blk':>4}  callback")
    for c in summary["callbacks"][:top]:
        lines.append(f"  {c['count']:7d} {c['total_ms']:10.1f} {c['mean_ms']:9.3f} {c['p99_ms']:9.3f} "
                     f"{c['max_ms']:9.1f} {c['blocking']:4d}  {c['kind']} {_clean(c['fn'])} "
                     f"({_clean(c['file'])}:{c['line']})")
    d = summary["deferreds"]
    lines.append("")
    if pending_word(runtime) == "Tasks":
        thing, failed, lost = "Tasks and Futures", "done", "exceptions never retrieved"
        lost_one, made = "never retrieved", "created in"
    else:
        thing, failed, lost = "Deferreds", "fired", "unhandled failures"
        lost_one, made = "unhandled", "Deferred created in"
    lines.append(f"{thing}: {d['created']} created, {d['fired']} {failed}, {d['pending']} pending, "
                 f"{len(d['unhandled'])} {lost}")
    for u in d["unhandled"][:top]:
        lines.append(f"  {lost_one} {_clean(u['exc'])}: {_clean(u['msg'])}  "
                     f"({made} {_clean(u['fn'])}, {_clean(u['file'])}:{u['line']})")
    if summary["errors"]:
        lines.append("")
        lines.append(f"Errors ({len(summary['errors'])}):")
        for e in summary["errors"][:top]:
            lines.append(f"  {_clean(e['exc'])}: {_clean(e['msg'])}  in {_clean(e['fn'])}")
    return "\n".join(lines)
