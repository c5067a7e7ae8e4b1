"""The Events view's filter: which events a query like ``kind:timer dur>50ms parse`` keeps.

Terms combine with AND:

- ``kind:K`` — the event's kind starts with K, or the kind of call it records does
  (``kind:timer`` finds the timers' runs as well as their scheduling, ``kind:read`` the reads);
- ``fd:N`` — the event is about descriptor N;
- ``site:S`` — a site the event names has S in its function name;
- ``dur>50ms``, ``dur>=1s``, ``dur<20us`` — the event's duration (calls, stalls);
- a bare word — it appears in the event or in the name or file of a site it names.

Matching a million events takes seconds, so the matches are collected by
:meth:`EventFilter.scan` in a worker thread into a growing sorted array that the Events view
shows as it fills (with the count so far and how much is left to scan).
"""

from __future__ import annotations

import operator
import re
from array import array
from collections.abc import Callable

from tracer.model import Model
from tui.describe import Event, SiteLookup, site_ids

_DURATION = re.compile(r"dur(<=|>=|<|>|=)(\d+(?:\.\d*)?)(ns|us|µs|ms|s)?$")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
            "=": operator.eq}
#: Event kinds whose ``kind`` field says what kind of call they are about.
_CALL_KINDS = frozenset({"call", "stall", "error"})


class EventFilter:
    """One parsed query and the indices of the events it matched so far."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.kinds: list[str] = []
        self.fds: list[int | str] = []
        self.sites: list[str] = []
        self.words: list[str] = []
        self.durations: list[tuple[Callable[[int, int], bool], int]] = []
        for term in query.lower().split():
            name, _, value = term.partition(":")
            duration = _DURATION.match(term)
            if duration is not None:
                op, number, unit = duration.groups()
                self.durations.append((_COMPARE[op], int(float(number) * _UNITS[unit or "ms"])))
            elif name == "kind" and value:
                self.kinds.append(value)
            elif name == "fd" and value:
                self.fds.append(int(value) if value.isdigit() else value)
            elif name == "site" and value:
                self.sites.append(value)
            else:
                self.words.append(term)
        self.rows: array[int] = array("q")
        self.scanned = 0
        self.busy = False
        self._site_text: dict[int, str] = {}

    def might_match(self, kind: str) -> bool:
        """Whether an event of ``kind`` can match at all (the scan skips decoding the rest)."""
        if self.durations and kind not in ("call", "dcall", "stall"):
            return False
        return kind in _CALL_KINDS or kind == "dcall" or all(kind.startswith(k)
                                                             for k in self.kinds)

    def matches(self, model: SiteLookup, event: Event) -> bool:
        """Whether ``event`` passes every term."""
        kind = str(event.get("ev", ""))
        call_kind = "deferred" if kind == "dcall" else \
            str(event.get("kind", "")) if kind in _CALL_KINDS else ""
        if any(not (kind.startswith(k) or call_kind.startswith(k)) for k in self.kinds):
            return False
        if any(event.get("fd") != fd for fd in self.fds):
            return False
        if self.durations:
            dur = event.get("dur", event.get("blocked"))
            if not isinstance(dur, int) or not all(test(dur, limit)
                                                   for test, limit in self.durations):
                return False
        if self.sites:
            names = [self._site(model, i).split("\n", 1)[0] for i in site_ids(event)]
            if not all(any(s in name for name in names) for s in self.sites):
                return False
        if self.words:
            haystack = " ".join([str(event).lower(),
                                 *(self._site(model, i) for i in site_ids(event))])
            return all(w in haystack for w in self.words)
        return True

    def _site(self, model: SiteLookup, site_id: int) -> str:
        """A site's function name, then its file, lower-cased (cached: sites never change)."""
        text = self._site_text.get(site_id)
        if text is None:
            site = model.site(site_id)
            text = self._site_text[site_id] = f"{site.fn.lower()}\n{site.file.lower()}"
        return text

    def scan(self, model: Model, stop: int, cancelled: Callable[[], bool]) -> None:
        """Test events ``scanned .. stop-1``, appending matches to :attr:`rows`;
        checks ``cancelled`` every few thousand events."""
        might: dict[str, bool] = {}
        for i in range(self.scanned, stop):
            if i % 4096 == 0 and cancelled():
                return
            kind = model.kind(i)
            hopeful = might.get(kind)
            if hopeful is None:
                hopeful = might[kind] = self.might_match(kind)
            if hopeful and self.matches(model, model.event(i)):
                self.rows.append(i)
            self.scanned = i + 1
