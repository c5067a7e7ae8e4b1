"""The Events view's filter: which events a query like
``kind:call fd:7 site:dataReceived timeout`` keeps.

Terms combine with AND: ``kind:K`` (the event kind starts with K),
``fd:N`` (the event's fd is N), ``site:S`` (a site the event names has S in
its function name), and a bare word (it appears anywhere in the event).
Matching a million events takes seconds, so the matches are collected by
:meth:`EventFilter.scan` in a worker thread into a growing sorted array
that the Events view shows as it fills.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from tracer.model import TraceModel
from tui.describe import Event, SiteLookup, site_ids


class EventFilter:
    """One parsed query and the indices of the events it matched so far."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.kinds: list[str] = []
        self.fds: list[int | str] = []
        self.sites: list[str] = []
        self.words: list[str] = []
        for term in query.lower().split():
            name, _, value = term.partition(":")
            if name == "kind" and value:
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
        self._site_names: dict[int, str] = {}

    def matches(self, model: SiteLookup, event: Event) -> bool:
        """Whether ``event`` passes every term."""
        kind = str(event.get("ev", ""))
        if any(not kind.startswith(k) for k in self.kinds):
            return False
        if any(event.get("fd") != fd for fd in self.fds):
            return False
        if self.sites:
            names = [self._site_name(model, i) for i in site_ids(event)]
            if not all(any(s in name for name in names) for s in self.sites):
                return False
        if self.words:
            haystack = str(event).lower()
            return all(w in haystack for w in self.words)
        return True

    def _site_name(self, model: SiteLookup, site_id: int) -> str:
        name = self._site_names.get(site_id)
        if name is None:
            name = self._site_names[site_id] = model.site(site_id).fn.lower()
        return name

    def scan(self, model: TraceModel, stop: int, cancelled: Callable[[], bool]) -> None:
        """Test events ``scanned .. stop-1``, appending matches to :attr:`rows`;
        checks ``cancelled`` every few thousand events."""
        for i in range(self.scanned, stop):
            if i % 4096 == 0 and cancelled():
                return
            if self.matches(model, model.event(i)):
                self.rows.append(i)
            self.scanned = i + 1
