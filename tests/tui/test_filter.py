"""The Events filter's query language, on events as the model gives them (no App)."""

from __future__ import annotations

from tracer.model import Site
from tui.filter import EventFilter

MS = 1_000_000
SITES = {1: Site("app.Echo.dataReceived", "/app/echo.py", 20),
         2: Site("app.crunch", "/app/work.py", 8),
         3: Site("app.main", "/app/work.py", 30)}


class Sites:
    def site(self, site_id: int) -> Site:
        return SITES[site_id]


EVENTS = [
    {"t": 1, "ev": "timer", "id": 3, "site": 3, "fn": 2, "due": 5},
    {"t": 2, "ev": "call", "kind": "timer", "site": 2, "dur": 120 * MS, "depth": 0, "timer": 3},
    {"t": 3, "ev": "call", "kind": "read", "site": 1, "dur": 2 * MS, "depth": 0, "fd": 7},
    {"t": 4, "ev": "stall", "site": 1, "kind": "read", "depth": 0, "since": 3, "blocked": 60 * MS,
     "stack": []},
    {"t": 5, "ev": "dcall", "d": 1, "site": 2, "dur": 51 * MS, "depth": 1, "eb": False,
     "fail": False},
    {"t": 6, "ev": "conn", "fd": 7, "role": "server", "host": "127.0.0.1:80",
     "peer": "127.0.0.1:50123"},
]


def kept(query: str) -> list[int]:
    flt = EventFilter(query)
    return [i for i, ev in enumerate(EVENTS)
            if flt.might_match(str(ev["ev"])) and flt.matches(Sites(), ev)]


def test_kind_finds_the_runs_of_that_kind_of_callback_too() -> None:
    assert kept("kind:timer") == [0, 1]          # the scheduling and the run
    assert kept("kind:read") == [2, 3]
    assert kept("kind:deferred") == [4]
    assert kept("kind:call") == [1, 2]


def test_durations_with_units() -> None:
    assert kept("dur>50ms") == [1, 3, 4]          # a stall's time blocked counts
    assert kept("dur>50") == [1, 3, 4]            # milliseconds by default
    assert kept("dur>=120ms") == [1]
    assert kept("dur<1s kind:call") == [1, 2]
    assert kept("dur<3000us") == [2]


def test_a_plain_word_matches_the_sites_an_event_names() -> None:
    assert kept("datareceived") == [2, 3]         # by name, case aside
    assert kept("work.py") == [0, 1, 4]           # by file
    assert kept("50123") == [5]                   # or anywhere in the event
    assert kept("site:crunch") == [0, 1, 4]
    assert kept("fd:7 kind:call") == [2]
