"""The warnings (tracer/lints.py) on a real recording of an app that earns each of them."""

from __future__ import annotations

import pytest
from recording import record_app

from tracer.lints import PENDING_NS, Lint, lints
from tracer.model import TraceModel

pytestmark = pytest.mark.usefixtures("probe_impl")

APP = """
    import socket
    import time
    from reactor import defer, reactor

    def parse():
        time.sleep(0.08)                         # stalls twice at this line

    reactor.callLater(0.01, parse)
    reactor.callLater(0.10, parse)

    spins = [0]
    def spin():                                  # re-schedules itself at once: a busy loop
        spins[0] += 1
        if spins[0] < 40:
            reactor.callLater(0, spin)
    reactor.callLater(0.2, spin)

    def late():
        pass
    reactor.callLater(0.05, late)                # due while parse() holds the loop

    reactor.suggestThreadPoolSize(1)
    def job(seconds):
        time.sleep(seconds)
    for seconds in (0.15, 0.05, 0.05):           # one thread: jobs 2 and 3 wait 3x their run
        reactor.callLater(0.3, reactor.callInThread, job, seconds)

    class Idle:                                  # watched for writing, nothing to write
        def __init__(self):
            self.a, self.b = socket.socketpair()
            self.a.setblocking(False)
        def fileno(self):
            return self.a.fileno()
        def doWrite(self):
            return None
        def logPrefix(self):
            return "Idle"
        def connectionLost(self, reason):
            pass
    idle = Idle()
    reactor.callLater(0.5, reactor.addWriter, idle)
    reactor.callLater(0.7, reactor.removeWriter, idle)

    def make_deferreds():
        global waiting, failed
        waiting = defer.Deferred()               # never fired
        failed = defer.Deferred()
        failed.errback(ValueError("nobody handles this"))   # no errback, still referenced
    reactor.callLater(0.05, make_deferreds)
    reactor.callLater(1.0, reactor.stop)
    reactor.run()
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, probe_impl: str) -> TraceModel:
    path = record_app(tmp_path_factory.mktemp("lints"), APP)
    return TraceModel.load(str(path))


def kinds_and_texts(model: TraceModel, now_ns: int) -> dict[str, list[str]]:
    """The warnings at ``now_ns`` (the state after the last event before it)."""
    found: dict[str, list[str]] = {}
    state = model.state_at(model.index_at(now_ns))
    for lint in lints(state, model.site, now_ns):
        found.setdefault(lint.kind, []).append(lint.text)
    return found


def test_each_problem_is_one_warning_naming_its_site_and_count(model: TraceModel) -> None:
    """Each parse() runs 30 ms past the 50 ms threshold: a few watchdog ticks to sample its
    line in (a stall with no sample is named by its def line instead, and then the two are
    not the same place; with 10 ms over, that happened under a full suite on 3.14)."""
    found = kinds_and_texts(model, model.duration_ns)
    [stalls] = found["stalls"]
    assert stalls.startswith("parse (app.py:7) blocked the loop 2 times")
    [busy] = found["busy"]
    assert busy.startswith("__main__.spin (app.py:13) re-schedules itself to run at once: 39 ")
    assert any(t.startswith("__main__.late (app.py:") and "started late 1 of 1 times" in t
               for t in found["late"])
    [pool] = found["pool"]
    assert pool.startswith("__main__.job (app.py:") and ": 2 of 3 thread-pool jobs waited" in pool
    assert "writer" not in found                    # the writer was removed at 0.7 s
    [failure] = found["failure"]
    assert failure.startswith("1 Deferred created in __main__.make_deferreds (app.py:")
    assert "pending" not in found                   # not yet: the run lasted one second


def test_a_deferred_pending_long_enough_is_a_warning(model: TraceModel) -> None:
    later = model.duration_ns + PENDING_NS
    [pending] = kinds_and_texts(model, later)["pending"]
    assert pending.startswith("1 Deferred created in __main__.make_deferreds (app.py:")
    assert "pending for over 5 s" in pending


def test_a_writer_with_nothing_to_write_while_it_is_watched(model: TraceModel) -> None:
    added = next(e for e in map(model.event, range(len(model)))
                 if e["ev"] == "fdadd" and e["mode"] == "w" and e["type"] == "Idle")
    [writer] = kinds_and_texts(model, added["t"] + 100 * 1_000_000)["writer"]  # of its 200 ms
    assert writer.startswith("fd ") and "(Idle) is watched for writing with nothing to write" \
        in writer


@pytest.mark.parametrize("runtime, thing, advice", [
    ("reactor", "1 Deferred created in", "deferToThread"),
    ("asyncio", "1 Task created in", "asyncio.to_thread"),
])
def test_warnings_speak_the_words_of_the_runtime_traced(runtime, thing, advice):
    """asyncio's pending things are Tasks and Futures, and the advice names its own way out;
    the detail pane says it in the same words."""
    from tracer.model import DeferredInfo, Site, TraceState
    from tui import detail

    state = TraceState()
    state.runtime = runtime
    state.pending_deferreds[1] = DeferredInfo(1, 5, 0)
    [pending] = lints(state, lambda _site: Site("main", "/app/main.py", 3), PENDING_NS * 2)
    assert pending.text.startswith(thing)
    stalls = Lint("stalls", "main (main.py:3) blocked the loop 3 times", 0, 3)
    assert advice in detail.warning(stalls, runtime).plain
