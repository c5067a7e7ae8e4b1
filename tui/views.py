"""The tabular views' rows, built from a :class:`tracer.model.TraceState`.

Each function turns the state at the cursor into :class:`tui.tables.Row`s: the cells shown,
a sort value per column, and the object the detail pane describes when the row is
highlighted.  Cells are Text built from cleaned trace data, never markup.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.text import Text

from tracer.lints import Lint
from tracer.model import Model, TraceState
from tracer.names import stall_culprit
from tui.describe import culprit, millis, seconds, site_name
from tui.tables import Column, Row
from tui.text import safe

BLOCKING_COLUMNS = [Column("dur", "ms"), Column("where", "stalled in", False, shrink=True),
                    Column("fn", "callback", False, shrink=True), Column("kind", "kind", False),
                    Column("t", "at")]
CALLBACK_COLUMNS = [Column("fn", "callback", False, shrink=True), Column("kind", "kind", False),
                    Column("count", "calls"), Column("total", "total ms"),
                    Column("mean", "mean ms"), Column("p99", "p99 ms"), Column("max", "max ms"),
                    Column("blocking", "blocking")]
DESCRIPTOR_COLUMNS = [Column("fd", "fd", False), Column("type", "type", False, shrink=True),
                      Column("rw", "r/w", False), Column("peer", "peer", False, shrink=True),
                      Column("in", "bytes in"), Column("out", "bytes out"), Column("age", "age s")]
THREAD_COLUMNS = [Column("job", "job"), Column("fn", "function", False, shrink=True),
                  Column("state", "state", False), Column("wait", "queue ms"),
                  Column("run", "run ms")]
WARNING_COLUMNS = [Column("count", "count"), Column("text", "warning", False, shrink=True)]


def _num(text: str) -> Text:
    return Text(text, justify="right", no_wrap=True)


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def blocking_rows(state: TraceState, model: Model) -> Iterator[Row]:
    """One row per stall so far (the calls nested in one are its chain, in the detail pane),
    named by the user's code it was stuck in."""
    for number, stall in enumerate(state.stalls):
        call = stall.call
        where = culprit(stall_culprit(stall, model.site))
        fn = site_name(model.site(call.site))
        yield Row(stall_key(number),
                  [_num(millis(call.dur_ns)), safe(where), safe(fn), safe(call.kind),
                   _num(seconds(call.t_ns))],
                  [call.dur_ns, where.lower(), fn.lower(), call.kind, call.t_ns], stall)


def stall_key(number: int) -> str:
    """The Blocking table's key of the ``number``-th stall of the trace."""
    return f"b{number}"


def callback_rows(state: TraceState, model: Model) -> Iterator[Row]:
    """Per-site statistics of the calls so far."""
    for site_id, stats in state.callbacks.items():
        if not stats.count:
            continue       # a timer only seen re-scheduling itself, not run yet
        fn = site_name(model.site(site_id))
        p99 = stats.p99_ns
        yield Row(f"s{site_id}",
                  [safe(fn), safe(stats.kind), _num(f"{stats.count:,}"),
                   _num(millis(stats.total_ns)), _num(millis(stats.mean_ns)), _num(millis(p99)),
                   _num(millis(stats.max_ns)), _num(f"{stats.blocking:,}")],
                  [fn.lower(), stats.kind, stats.count, stats.total_ns, stats.mean_ns, p99,
                   stats.max_ns, stats.blocking], stats)


def descriptor_rows(state: TraceState, cursor_ns: int) -> Iterator[Row]:
    """Descriptors open at the cursor."""
    for fd, info in state.descriptors.items():
        rw = ("r" if info.reading else "-") + ("w" if info.writing else "-")
        kind = info.type or info.role or ""
        age = cursor_ns - info.opened_ns
        yield Row(f"fd{fd}",
                  [_num(str(fd)), safe(kind), safe(rw), safe(info.peer or ""),
                   _num(_count(info.bytes_in)), _num(_count(info.bytes_out)),
                   _num(f"{age / 1e9:.1f}")],
                  [fd, kind, rw, info.peer or "", info.bytes_in or 0, info.bytes_out or 0, age],
                  info)


def thread_rows(state: TraceState, model: Model, cursor_ns: int) -> Iterator[Row]:
    """Pool jobs: how long each waited in the queue and ran."""
    for job, info in state.threads.items():
        run: int | None
        if info.started_ns is None:
            status, wait, run = "queued", cursor_ns - info.submitted_ns, None
        else:
            wait = info.started_ns - info.submitted_ns
            end = info.done_ns if info.done_ns is not None else cursor_ns
            run = end - info.started_ns
            status = "running" if info.done_ns is None else ("error" if info.error else "done")
        fn = site_name(model.site(info.site))
        yield Row(f"j{job}",
                  [_num(str(job)), safe(fn), safe(status), _num(millis(wait)),
                   _num("" if run is None else millis(run))],
                  [job, fn.lower(), status, wait, -1 if run is None else run], info)


def warning_rows(lints: list[Lint]) -> Iterator[Row]:
    """The warnings at the cursor (shown in the order :func:`tracer.lints.lints` gives)."""
    seen: dict[tuple[str, int], int] = {}
    for lint in lints:
        n = seen[lint.kind, lint.site] = seen.get((lint.kind, lint.site), -1) + 1
        yield Row(f"{lint.kind}-{lint.site}-{n}",
                  [_num(f"{lint.count:,}"), safe(lint.text, limit=300)],
                  [lint.count, lint.text.lower()], lint)
