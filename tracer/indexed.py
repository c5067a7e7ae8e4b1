"""The dashboard's model of a trace on the compiled fold: the lines stay in the file.

:class:`tracer.model.TraceModel` keeps every line in memory and folds every event in Python,
tens of microseconds an event: half a minute for a million events, and a snapshot of the
whole state every 8192 of them.  :class:`IndexedModel` gives the same states (tests compare
them event by event) from ``tracer._scan.Scanner``, StateBuilder's fold in C:

- the Scanner folds the lines as they are fed and keeps an index of them (each event's
  offset, length, time and kind: 22 bytes an event); an event is read back from the file
  when it is asked for;
- the rare kinds (sites, loop samples, errors, descriptors, thread jobs...) are folded in
  Python by a :class:`StateBuilder`, as in the summary's fold (tracer/scan.py);
- every :data:`CHECKPOINT_EVERY` events both are copied (the Scanner's copy is a few
  ``memcpy``), so the state at event ``i`` is the nearest copy before it, fed the lines from
  there to ``i``.

The blocking calls and stalls only grow: the model turns the Scanner's records into
:class:`BlockingCall` and :class:`Stall` once, and a state takes as many as it has.
"""

from __future__ import annotations

import functools
import os
import weakref
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, cast

from tracer.format import INT_MAX, INT_MIN
from tracer.model import (
    UNKNOWN_SITE,
    BlockingCall,
    CallbackStats,
    DeferredInfo,
    Model,
    Site,
    Stall,
    StateBuilder,
    TraceModel,
    TraceState,
    running_of,
    threshold_ns_of,
)
from tracer.reader import Warn, decode, parse_line, warn_stderr
from tracer.scan import blocking_call, compiled, stall

#: Events between two copies of the fold.  The state at an event is at most this many
#: events away from a copy, folded in C at a few million events a second: about 20 ms, well
#: within a keypress; and 150 copies for ten million events.
CHECKPOINT_EVERY = 65536


def usable(header: dict) -> bool:
    """Whether a trace with this header can be modelled here: the extension is built and
    the threshold fits the C fold's int64 nanoseconds."""
    return compiled is not None and INT_MIN <= threshold_ns_of(header) <= INT_MAX


def open_model(path: str, header: dict, warn: Warn = warn_stderr) -> Model:
    """The model for the trace at ``path``: indexed where it can be, else in Python."""
    return IndexedModel(path, header, warn) if usable(header) else TraceModel(header, warn)


def _quiet(message: str) -> None:
    """A copy folds lines the original folded already, and warned about."""


@dataclass
class _Fold:
    """The fold after some events: the Scanner, the Python builder of the rare kinds, and
    where in the file the next line starts."""
    scanner: Any
    rare: StateBuilder
    events: int
    offset: int
    lineno: int

    def copy(self) -> _Fold:
        rare = self.rare.snapshot()
        scanner = self.scanner.snapshot(rare.sites, functools.partial(parse_line, warn=_quiet),
                                        rare.handle)
        return _Fold(scanner, rare, self.events, self.offset, self.lineno)


class IndexedModel:
    """A trace file, indexed, with the state at any event index (tracer.model.Model)."""

    def __init__(self, path: str, header: dict, warn: Warn = warn_stderr) -> None:
        if compiled is None:
            raise RuntimeError("tracer._scan is not built")
        self.header = header
        self.threshold_ns = threshold_ns_of(header)
        self._fd = os.open(path, os.O_RDONLY)
        self.close = weakref.finalize(self, os.close, self._fd)
        rare = StateBuilder(self.threshold_ns)
        scanner = compiled.Scanner(self.threshold_ns, rare.sites,
                                   functools.partial(parse_line, warn=warn), rare.handle,
                                   exact=False, index=True)
        self._live = _Fold(scanner, rare, 0, 0, 0)
        self._records: tuple[list, list] = scanner.records()
        self._blocking: list[BlockingCall] = []
        self._stalls: list[Stall] = []
        self._checkpoints: list[_Fold] = []
        self._cache: _Fold | None = None
        self._live_state: tuple[int, TraceState] | None = None

    def add_block(self, first_lineno: int, offset: int, block: bytes) -> None:
        live = self._live
        if not self._checkpoints:
            live.offset, live.lineno = offset, first_lineno
            self._checkpoints.append(live.copy())
        live.scanner.feed(block, first_lineno, offset)
        live.events = len(live.scanner)
        live.offset = offset + len(block)
        live.lineno = first_lineno + block.count(b"\n")
        if live.events - self._checkpoints[-1].events >= CHECKPOINT_EVERY:
            self._checkpoints.append(live.copy())

    def __len__(self) -> int:
        return self._live.events

    def event(self, i: int) -> dict:
        offset, length = self._live.scanner.line(i)
        return cast(dict, decode(os.pread(self._fd, length, offset)))   # checked when fed

    def time_ns(self, i: int) -> int:
        return cast(int, self._live.scanner.time(i))

    def kind(self, i: int) -> str:
        return cast(str, self._live.scanner.kind(i))

    def index_at(self, t_ns: int) -> int:
        return cast(int, self._live.scanner.index_at(t_ns))

    @property
    def duration_ns(self) -> int:
        return self.time_ns(len(self) - 1) if len(self) else 0

    @property
    def sites(self) -> dict[int, Site]:
        return self._live.rare.sites

    def site(self, site_id: int) -> Site:
        return self._live.rare.sites.get(site_id, UNKNOWN_SITE)

    @property
    def state(self) -> TraceState:
        """The state after every event held, made again only when events came."""
        n = len(self)
        if self._live_state is None or self._live_state[0] != n:
            self._live_state = (n, self._state_of(self._live))
        return self._live_state[1]

    def state_at(self, i: int) -> TraceState:
        n = len(self)
        if not 0 <= i <= n:
            raise IndexError(f"event index {i} outside 0..{n}")
        if i == n:
            return self.state
        fold = self._cache
        if fold is None or not fold.events <= i < fold.events + CHECKPOINT_EVERY:
            at = bisect_right(self._checkpoints, i, key=lambda c: c.events) - 1
            fold = self._checkpoints[at].copy()
        if fold.events < i:
            end = self._live.scanner.line(i)[0]
            fold.scanner.feed(os.pread(self._fd, end - fold.offset, fold.offset), fold.lineno,
                              fold.offset)
            fold.events, fold.offset = i, end
        self._cache = fold
        return self._state_of(fold)

    # -- the TraceState of a fold ----------------------------------------------------------
    def _state_of(self, fold: _Fold) -> TraceState:
        """A TraceState of the fold's state that the caller may keep."""
        state = fold.rare.state_copy()
        held = fold.scanner.state()
        state.events, state.t_ns = held["events"], held["t_ns"]
        state.deferreds_created, state.deferreds_fired = held["created"], held["fired"]
        state.callbacks = {
            site: CallbackStats(site, kind, count, total, longest, blocking, hist, late, lag_max,
                                respawns)
            for site, kind, count, total, longest, blocking, hist, late, lag_max, respawns
            in held["callbacks"]}
        state.pending_deferreds = {
            d: DeferredInfo(d, site, created, callbacks, fired, waiting_on, cancelled)
            for d, site, created, callbacks, fired, waiting_on, cancelled in held["pending"]}
        state.failing = {d: (site, t) for d, site, t in held["failing"]}
        state.running = None if held["running"] is None else running_of(held["running"])
        state.blocking, state.stalls = self._records_upto(held["blocking"], held["stalls"])
        return state

    def _records_upto(self, n_blocking: int, n_stalls: int) -> tuple[list[BlockingCall], list[Stall]]:
        """The first blocking calls and stalls, made from the records once."""
        blocking_records, stall_records = self._records
        for record in blocking_records[len(self._blocking):]:
            self._blocking.append(blocking_call(record))
        for record in stall_records[len(self._stalls):]:
            self._stalls.append(stall(record, self._blocking))
        return self._blocking[:n_blocking], self._stalls[:n_stalls]
