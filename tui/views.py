"""The tabular views' rows, built from a :class:`tracer.model.TraceState`.

Each function turns the state at the cursor into ``(key, cells, object)``
rows for a :class:`tui.tables.Table`; the object is what the detail pane
prints when the row is highlighted.  Cells are Text built from cleaned trace
data, never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.text import Text

from tracer.lints import Lint
from tracer.model import CallbackStats, TraceModel, TraceState
from tracer.names import stall_culprit
from tui.describe import culprit, millis, seconds, site_name
from tui.text import safe

#: (row key, cells, the object the detail pane describes)
Row = tuple[str, list[Text], object]
MAX_ROWS = 500   # a view is for reading; longer lists are cut (longest/oldest first)

BLOCKING_COLUMNS = [("dur", "ms"), ("where", "stalled in"), ("fn", "callback"),
                    ("kind", "kind"), ("t", "at")]
CALLBACK_COLUMNS = [("fn", "callback"), ("kind", "kind"), ("count", "calls"),
                    ("total", "total ms"), ("mean", "mean ms"), ("p99", "p99 ms"),
                    ("max", "max ms"), ("blocking", "blocking")]
DESCRIPTOR_COLUMNS = [("fd", "fd"), ("type", "type"), ("rw", "r/w"), ("peer", "peer"),
                      ("in", "bytes in"), ("out", "bytes out"), ("age", "age s")]
WARNING_COLUMNS = [("count", "count"), ("text", "warning")]
THREAD_COLUMNS = [("job", "job"), ("fn", "function"), ("state", "state"),
                  ("wait", "queue ms"), ("run", "run ms")]


def _num(text: str) -> Text:
    return Text(text, justify="right", no_wrap=True)


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def blocking_rows(state: TraceState, model: TraceModel) -> Iterator[Row]:
    """One row per stall so far (the calls nested in one are its chain, in the detail pane),
    longest first, named by the user's code it was stuck in."""
    ordered = sorted(enumerate(state.stalls), key=lambda item: -item[1].call.dur_ns)
    for number, stall in ordered[:MAX_ROWS]:
        call = stall.call
        yield (stall_key(number),
               [_num(millis(call.dur_ns)), safe(culprit(stall_culprit(stall, model.site))),
                safe(site_name(model.site(call.site))), safe(call.kind), _num(seconds(call.t_ns))],
               stall)


def stall_key(number: int) -> str:
    """The Blocking table's key of the ``number``-th stall of the trace."""
    return f"b{number}"


_CALLBACK_SORT: dict[str, Callable[[int, CallbackStats, TraceModel], str | float]] = {
    "fn": lambda sid, st, m: site_name(m.site(sid)).lower(),
    "kind": lambda sid, st, m: st.kind,
    "count": lambda sid, st, m: st.count,
    "total": lambda sid, st, m: st.total_ns,
    "mean": lambda sid, st, m: st.mean_ns,
    "p99": lambda sid, st, m: st.p99_ns,
    "max": lambda sid, st, m: st.max_ns,
    "blocking": lambda sid, st, m: st.blocking,
}
CALLBACK_SORT_KEYS = [key for key, _ in CALLBACK_COLUMNS]


def callback_rows(state: TraceState, model: TraceModel, sort: str,
                  reverse: bool) -> Iterator[Row]:
    """Per-site stats sorted by column ``sort`` (``reverse`` for descending)."""
    key = _CALLBACK_SORT[sort]
    ordered = sorted(state.callbacks.items(), key=lambda item: key(item[0], item[1], model),
                     reverse=reverse)
    for site_id, stats in ordered[:MAX_ROWS]:
        yield (f"s{site_id}",
               [safe(site_name(model.site(site_id))), safe(stats.kind), _num(str(stats.count)),
                _num(millis(stats.total_ns)), _num(millis(stats.mean_ns)),
                _num(millis(stats.p99_ns)), _num(millis(stats.max_ns)), _num(str(stats.blocking))],
               stats)


def descriptor_rows(state: TraceState, cursor_ns: int) -> Iterator[Row]:
    """Descriptors open at the cursor, by fd."""
    for fd, info in sorted(state.descriptors.items())[:MAX_ROWS]:
        rw = ("r" if info.reading else "-") + ("w" if info.writing else "-")
        yield (f"fd{fd}",
               [_num(str(fd)), safe(info.type or info.role or ""), safe(rw),
                safe(info.peer or ""), _num(_count(info.bytes_in)), _num(_count(info.bytes_out)),
                _num(f"{(cursor_ns - info.opened_ns) / 1e9:.1f}")],
               info)


def thread_rows(state: TraceState, model: TraceModel, cursor_ns: int) -> Iterator[Row]:
    """Pool jobs, newest first: how long each waited in the queue and ran."""
    for job, info in sorted(state.threads.items(), reverse=True)[:MAX_ROWS]:
        run: int | None
        if info.started_ns is None:
            status, wait, run = "queued", cursor_ns - info.submitted_ns, None
        else:
            wait = info.started_ns - info.submitted_ns
            end = info.done_ns if info.done_ns is not None else cursor_ns
            run = end - info.started_ns
            status = "running" if info.done_ns is None else ("error" if info.error else "done")
        yield (f"j{job}",
               [_num(str(job)), safe(site_name(model.site(info.site))), safe(status),
                _num(millis(wait)), _num("" if run is None else millis(run))],
               info)


def warning_rows(lints: list[Lint]) -> Iterator[Row]:
    """The warnings at the cursor, in the order :func:`tracer.lints.lints` gives them."""
    seen: dict[tuple[str, int], int] = {}
    for lint in lints[:MAX_ROWS]:
        n = seen[lint.kind, lint.site] = seen.get((lint.kind, lint.site), -1) + 1
        yield (f"{lint.kind}-{lint.site}-{n}",
               [_num(f"{lint.count:,}"), safe(lint.text, limit=300)], lint)
