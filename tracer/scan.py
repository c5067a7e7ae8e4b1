"""The summary's pass over a whole trace: compiled where ``tracer._scan`` is built, else the
Python fold, with the same answers.

A summary folds every event once (:class:`tracer.model.StateBuilder`, exact percentiles).  In
Python that costs several microseconds an event, far too much for traces of millions of
events, so ``tracer/_scan.c`` folds the frequent compact rows in C and hands the rare lines
back to Python (parsed and checked by :func:`tracer.reader.parse_event`, applied by
``StateBuilder.handle``).  The compiled fold is the whole of StateBuilder's, so the dashboard's
model (:mod:`tracer.indexed`) runs on it too.  Without the extension (no compiler at install
time), the Python fold runs: slower, same summary.
"""

from __future__ import annotations

import functools
import importlib
from array import array
from dataclasses import dataclass
from types import ModuleType
from typing import IO

from tracer.format import INT_MAX, INT_MIN
from tracer.model import BlockingCall, CallbackStats, Stall, StateBuilder, frames, stall_of
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

try:
    #: The compiled passes (tracer/_scan.c), or None where they are not built.
    compiled: ModuleType | None = importlib.import_module("tracer._scan")
except ImportError:  # built without a compiler: the Python fold
    compiled = None

#: Whether the compiled fold is there.
COMPILED = compiled is not None


@dataclass
class Fold:
    """The state at the end of a trace, as the summary reads it."""
    header: dict
    threshold_ms: float
    builder: StateBuilder
    #: Deferreds (Tasks) not settled at the end.
    pending: int
    #: Every call's duration per site, and every timer's lag, in ascending order.
    durations: dict[int, array]
    lags: array


def recorded_threshold(header: dict) -> float:
    """The blocking threshold a trace was recorded with (50 ms when the header has none)."""
    recorded = header.get("threshold_ms", 50.0)
    return float(recorded) if isinstance(recorded, (int, float)) else 50.0


def fold(path: str, threshold_ms: float | None = None, warn: Warn = warn_stderr,
         compiled: bool | None = None) -> Fold:
    """Fold the trace at ``path`` once, in exact mode.

    ``threshold_ms`` re-evaluates what is blocking (default: the recorded threshold).
    ``compiled`` chooses the fold (default: the compiled one when it is built); a threshold
    past int64 nanoseconds always takes the Python one.
    """
    with open_trace(path) as f:
        header = parse_header(read_header_line(f, path), path)
        if threshold_ms is None:
            threshold_ms = recorded_threshold(header)
        builder = StateBuilder(int(threshold_ms * 1e6), exact=True)
        use_c = (COMPILED if compiled is None else compiled) \
            and INT_MIN <= builder.threshold_ns <= INT_MAX
        pending, durations, lags = _fold_compiled(f, builder, warn) if use_c \
            else _fold_python(f, builder, warn)
    return Fold(header, float(threshold_ms), builder, pending, durations, lags)


Sorted = tuple[int, dict[int, array], array]


def _fold_python(f: IO[bytes], builder: StateBuilder, warn: Warn) -> Sorted:
    apply = builder.apply
    for index, event in enumerate(iter_events(f, warn)):
        apply(event, index)
    durations = {site: array("q", sorted(values))
                 for site, values in (builder.durations or {}).items()}
    return len(builder.state.pending_deferreds), durations, array("q", sorted(builder.lags or ()))


def blocking_call(record: tuple) -> BlockingCall:
    """A blocking call from the compiled fold's record of it."""
    site, kind, depth, start, dur, stack, index, origin = record
    return BlockingCall(site, kind, depth, start, dur, () if stack is None else frames(stack),
                        index, origin)


def stall(record: tuple, blocking: list[BlockingCall]) -> Stall:
    """A stall from the compiled fold's record of it, and the blocking calls it names."""
    call, chain, since, stack, nested = record
    return stall_of(blocking[call], [blocking[i] for i in chain], nested, since, stack)


def _fold_compiled(f: IO[bytes], builder: StateBuilder, warn: Warn) -> Sorted:
    if compiled is None:
        raise RuntimeError("tracer._scan is not built")
    scanner = compiled.Scanner(builder.threshold_ns, builder.sites,
                               functools.partial(parse_line, warn=warn), builder.handle)
    for lineno, block in iter_blocks(f, warn):
        scanner.feed(block, lineno)
    result = scanner.result()
    state = builder.state
    state.events, state.t_ns = result["events"], result["t_ns"]
    state.deferreds_created, state.deferreds_fired = result["created"], result["fired"]
    blocking = [blocking_call(record) for record in result["blocking"]]
    state.blocking = blocking
    state.stalls = [stall(record, blocking) for record in result["stalls"]]
    durations: dict[int, array] = {}
    for site, kind, count, total, longest, n_blocking, raw in result["callbacks"]:
        state.callbacks[site] = CallbackStats(site, kind, count, total, longest, n_blocking)
        durations[site] = array("q", raw)
    return result["pending"], durations, array("q", result["lags"])
