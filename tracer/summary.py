"""``loopscope summary``: what blocked the loop, per-callback statistics, Deferred health.

The JSON shape is a contract (docs/architecture.md, "The summary --json contract"): scripts
and CI parse it.  The summary is one streaming pass of :class:`tracer.model.StateBuilder` over
the file — the same state the dashboard shows at the last event — with exact percentiles;
:mod:`tracer.scan` runs that pass, compiled where it can.
"""

from __future__ import annotations

import math
from array import array

from tracer.format import INT_MAX
from tracer.model import UNKNOWN_SITE, BlockingCall, Frame, Site
from tracer.names import is_inherited, pending_word, short_path, stall_culprit
from tracer.reader import Warn, warn_stderr
from tracer.scan import Fold, fold


def percentile(sorted_values: array | list | tuple, p: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(math.ceil(p * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def _ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def _place(site: Site) -> dict:
    return {"fn": site.fn, "file": site.file, "line": site.line}


def _stack(stack: tuple[Frame, ...]) -> list[dict]:
    return [{"file": f.file, "line": f.line, "func": f.func} for f in stack]


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
    return summary_of(fold(path, threshold_ms, warn))


def summary_of(folded: Fold) -> Summary:
    """The JSON-contract dict of a folded trace (:func:`tracer.scan.fold`)."""
    threshold_ms = folded.threshold_ms
    builder = folded.builder
    state = builder.state
    sites = builder.sites

    def site(site_id: int) -> Site:
        return sites.get(site_id, UNKNOWN_SITE)

    lags = folded.lags
    samples = state.loop
    blocking = sorted(state.blocking, key=lambda b: (-b.dur_ns, b.t_ns))
    stalls = sorted(state.stalls, key=lambda s: (-s.call.dur_ns, s.call.t_ns))

    def call(b: BlockingCall) -> dict:
        return {**_place(site(b.site)), "kind": b.kind, "depth": b.depth, "t_ms": _ms(b.t_ns),
                "dur_ms": _ms(b.dur_ns)}
    callbacks = []
    for stats in sorted(state.callbacks.values(), key=lambda c: -c.total_ns):
        s = site(stats.site)
        durations = folded.durations.get(stats.site, ())
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
            "iterations": min(sum(x.iterations for x in samples), INT_MAX),  # JSON's int64
            "busy_ratio": round(sum(x.busy_ratio for x in samples) / len(samples), 4) if samples else 0.0,
            "lag_p50_ms": _ms(percentile(lags, 0.5)),
            "lag_p99_ms": _ms(percentile(lags, 0.99)),
            "lag_max_ms": _ms(lags[-1] if lags else 0),
        },
        "blocking": [{**call(b), "stack": _stack(b.stack)} for b in blocking],
        "stalls": [
            {**_place(stall_culprit(s, site)), "callback": _place(site(s.call.site)),
             "kind": s.call.kind, "t_ms": _ms(s.call.t_ns), "dur_ms": _ms(s.call.dur_ns),
             "stack": _stack(s.stack), "chain": [call(b) for b in s.chain]}
            for s in stalls
        ],
        "callbacks": callbacks,
        "deferreds": {
            "created": state.deferreds_created,
            "fired": state.deferreds_fired,
            "pending": folded.pending,
            "unhandled": [
                {"fn": site(u.site).fn, "file": site(u.site).file, "line": site(u.site).line,
                 "exc": u.exc, "msg": u.msg}
                for u in state.unhandled
            ],
        },
        "errors": [{"fn": site(e.site).fn, "exc": e.exc, "msg": e.msg} for e in state.errors],
        "children": [{"pid": c.pid, "file": c.file} for c in state.children],
    })
    result.runtime, result.unseen = state.runtime, state.runtime_unseen
    return result


def printable(text: object) -> str:
    """Trace text is data: no control character, bidi override nor zero-width character
    reaches the terminal (none of them is printable)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def place_text(place: dict, callback: bool = True) -> str:
    """``fn (file:line)`` with a readable path; an inherited method (a ``callback`` site) says
    where it is defined."""
    site = Site(place["fn"], place["file"], place["line"])
    if not site.file:
        return printable(site.fn)
    location = f"{printable(short_path(site.file))}:{site.line}"
    if callback and is_inherited(site):
        return f"{printable(site.fn)} (inherited, defined at {location})"
    return f"{printable(site.fn)} ({location})"


def runs_itself(stall: dict) -> bool:
    """Whether a summary stall was stuck in its own callback (a timer's function), rather
    than in code that callback ran (a Deferred's callback, a protocol method): then naming
    the callback too would say the same thing twice."""
    callback = stall["callback"]
    return (callback["file"] == stall["file"]
            and (callback["fn"] + ".").endswith(f".{stall['fn']}."))


def _more(left_out: int, what: str) -> list[str]:
    return [f"  … {left_out:,} more {what} (loopscope summary --json lists them all)"] \
        if left_out > 0 else []


def format_text(summary: dict, top: int = 15) -> str:
    """A readable report of a summary dict, for a terminal, in its runtime's words: one
    precision per column, the longest ``top`` rows of each table, and how many were left out."""
    runtime = getattr(summary, "runtime", "reactor")
    unseen = getattr(summary, "unseen", "")
    loop = summary["loop"]
    duration_s = summary["duration_ms"] / 1000
    # A run shorter than a second has a loop sample or two: say what the share is of.
    busy_of = f" of the {duration_s:.2f} s run" if duration_s < 1 else ""
    lines = [
        (f"{summary['events']:,} events over {duration_s:,.2f} s, {summary['dropped']:,} "
         f"dropped, threshold {summary['threshold_ms']:g} ms"
         + ("" if runtime == "reactor" else f", on {printable(runtime)}")),
        (f"loop: {loop['iterations']:,} iterations, busy {loop['busy_ratio'] * 100:.1f}%"
         f"{busy_of}, timer lag p50 {loop['lag_p50_ms']:,.2f} ms, p99 "
         f"{loop['lag_p99_ms']:,.2f} ms, max {loop['lag_max_ms']:,.2f} ms"),
    ]
    if unseen:
        lines.append(f"not seen on {printable(runtime)}: {printable(unseen)}")
    lines.append("")
    stalls = summary["stalls"]
    nested = len(summary["blocking"]) - len(stalls)
    if stalls:
        inside = f", with {nested:,} blocking calls nested in them" if nested > 0 else ""
        lines.append(f"Blocking callbacks ({len(stalls):,} stall{'s' if len(stalls) != 1 else ''}"
                     f"{inside}), longest first:")
        lines.append(f"  {'ms':>9}  {'at s':>8}  {'kind':<8}  stalled in")
        for stall in stalls[:top]:
            lines.append(f"  {stall['dur_ms']:9,.1f}  {stall['t_ms'] / 1000:8,.2f}  "
                         f"{printable(stall['kind']):<8}  {place_text(stall, callback=False)}")
            indent = " " * 35
            if not runs_itself(stall):
                lines.append(f"{indent}callback {place_text(stall['callback'])}")
            for call in stall["chain"]:
                lines.append(f"{indent}nested: {call['dur_ms']:,.1f} ms {printable(call['kind'])} "
                             f"{place_text(call)}")
        lines += _more(len(stalls) - top, "stalls")
    else:
        lines.append("No blocking callbacks.")
    lines.append("")
    lines.append("Callbacks by total time:")
    lines.append(f"  {'calls':>9} {'total ms':>10} {'mean ms':>9} {'p99 ms':>9} {'max ms':>9} "
                 f"{'blocking':>8}  {'kind':<8}  callback")
    callbacks = summary["callbacks"]
    for c in callbacks[:top]:
        lines.append(f"  {c['count']:9,d} {c['total_ms']:10,.1f} {c['mean_ms']:9,.3f} "
                     f"{c['p99_ms']:9,.3f} {c['max_ms']:9,.3f} {c['blocking']:8,d}  "
                     f"{printable(c['kind']):<8}  {place_text(c)}")
    lines += _more(len(callbacks) - top, "callbacks")
    d = summary["deferreds"]
    lines.append("")
    if pending_word(runtime) == "Tasks":
        thing, failed, lost = "Tasks and Futures", "done", "exceptions never retrieved"
        lost_one, made = "never retrieved", "created in"
    else:
        thing, failed, lost = "Deferreds", "fired", "unhandled failures"
        lost_one, made = "unhandled", "Deferred created in"
    lines.append(f"{thing}: {d['created']:,} created, {d['fired']:,} {failed}, {d['pending']:,} "
                 f"pending, {len(d['unhandled']):,} {lost}")
    for u in d["unhandled"][:top]:
        lines.append(f"  {lost_one} {printable(u['exc'])}: {printable(u['msg'])}  ({made} {place_text(u)})")
    lines += _more(len(d["unhandled"]) - top, lost)
    if summary["errors"]:
        lines.append("")
        lines.append(f"Errors ({len(summary['errors']):,}):")
        for e in summary["errors"][:top]:
            lines.append(f"  {printable(e['exc'])}: {printable(e['msg'])}  in {printable(e['fn'])}")
        lines += _more(len(summary["errors"]) - top, "errors")
    if summary["children"]:
        lines.append("")
        lines.append(f"Forked children ({len(summary['children'])}), their traces beside this one:")
        for c in summary["children"]:
            where = printable(c["file"]) if c["file"] is not None else "not traced"
            lines.append(f"  pid {c['pid']}: {where}")
    return "\n".join(lines)
