"""No hook changes what the application sees: a hook's error is counted and written down."""

import threading

import pytest

import tracer
from reactor import defer, protocol
from reactor.base import Reactor
from tracer.probe import HOOK_ERRORS_WRITTEN
from tracer.reader import read_trace

pytestmark = pytest.mark.usefixtures("probe_impl")


def events_of(path):
    _header, events = read_trace(str(path), warn=pytest.fail)
    return list(events)


class UnprintableError(Exception):
    """An application exception whose text cannot be had."""

    def __str__(self):
        raise RuntimeError("no text for you")


def test_a_protocol_whose_exception_cannot_be_printed_still_gets_connectionLost(trace_path):
    loop = Reactor()
    lost = []

    class Fragile(protocol.Protocol):
        def dataReceived(self, data):
            raise UnprintableError()

        def connectionLost(self, reason):
            lost.append(reason.value)
            loop.stop()

    class Sender(protocol.Protocol):
        def connectionMade(self):
            self.transport.write(b"hello")

    server = protocol.Factory()
    server.protocol = Fragile
    port = loop.listenTCP(0, server, interface="127.0.0.1")
    client = protocol.ClientFactory()
    client.protocol = Sender
    tracer.start(str(trace_path))
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    loop.callLater(5, loop.stop)  # a bound, should connectionLost never come
    loop.run(installSignalHandlers=False)
    tracer.stop()
    assert len(lost) == 1 and isinstance(lost[0], UnprintableError)
    events = events_of(trace_path)
    [closed] = [e for e in events if e["ev"] == "close" and e["reason"].startswith("Unprintable")]
    assert closed["reason"] == "UnprintableError: <UnprintableError with broken __str__>"
    assert events[-1]["hook_errors"] == 0


class NoIntrospection:
    """A callable that refuses every attribute lookup it does not define (a proxy, say)."""

    def __init__(self, ran):
        self.ran = ran

    def __call__(self, *args):
        self.ran.append(threading.get_ident())
        return args[0] if args else None

    def __getattr__(self, name):
        raise LookupError(f"no attribute {name} here")


def test_a_failing_hook_is_counted_and_written_and_the_app_goes_on(trace_path):
    loop = Reactor()
    ran = []
    jobs = HOOK_ERRORS_WRITTEN + 5

    def submit():
        for _ in range(jobs):  # naming the function fails in thread_submitted
            loop.callInThread(NoIntrospection(ran))
        loop.callInThread(loop.callFromThread, loop.stop)  # after them (one worker is enough)

    tracer.start(str(trace_path))
    loop.getThreadPool().adjustPoolsize(1, 1)
    loop.callLater(0, submit)
    loop.run(installSignalHandlers=False)
    tracer.stop()
    assert len(ran) == jobs and threading.get_ident() not in ran
    events = events_of(trace_path)
    errors = [e for e in events if e["ev"] == "hookerr"]
    assert len(errors) == HOOK_ERRORS_WRITTEN
    assert {(e["hook"], e["exc"], e["msg"]) for e in errors} == {
        ("thread_submitted", "LookupError", "no attribute __code__ here")}
    assert events[-1]["ev"] == "end" and events[-1]["hook_errors"] == jobs
    assert sum(e["ev"] == "tdone" for e in events) == jobs + 1  # the other hooks still record


def test_a_callable_that_cannot_be_named_runs_and_is_recorded_with_an_unknown_site(
        trace_path, probe_impl):
    loop = Reactor()
    ran = []
    seen = []
    tracer.start(str(trace_path))
    d = defer.Deferred()
    d.addCallback(NoIntrospection(ran))
    d.addCallback(seen.append)
    loop.callLater(0, NoIntrospection(ran))
    loop.callLater(0, d.callback, "result")
    loop.callLater(0.01, loop.stop)
    loop.run(installSignalHandlers=False)
    tracer.stop()
    assert len(ran) == 2 and seen == ["result"]
    events = events_of(trace_path)
    [timer] = [e for e in events if e["ev"] == "timer" and e["fn"] == 0]
    assert [e["site"] for e in events if e["ev"] == "call" and e.get("timer") == timer["id"]] == [0]
    assert next(e["cb"] for e in events if e["ev"] == "dadd") == 0
    assert next(e["site"] for e in events if e["ev"] == "dcall") == 0
    if probe_impl == "python":  # the C probe reports its slow paths' errors as unraisable
        hooks = {e["hook"] for e in events if e["ev"] == "hookerr"}
        assert hooks == {"deferred_callbacks_added", "timer_scheduled", "run_call",
                         "deferred_callback_begin"}


def test_hook_failed_reports_what_the_c_probe_hands_it(trace_path):
    recording = tracer.start(str(trace_path))
    for _ in range(HOOK_ERRORS_WRITTEN + 1):
        recording.probe._hook_failed("poll_end", ValueError("x" * 5000))
    recording.probe._hook_failed("deferred_fired", UnprintableError())
    tracer.stop()
    events = events_of(trace_path)
    errors = [e for e in events if e["ev"] == "hookerr"]
    assert [e["hook"] for e in errors] == ["poll_end"] * HOOK_ERRORS_WRITTEN + ["deferred_fired"]
    assert len(errors[0]["msg"]) == 200 and errors[0]["exc"] == "ValueError"
    assert errors[-1]["msg"] == "<UnprintableError with broken __str__>"
    assert events[-1]["hook_errors"] == HOOK_ERRORS_WRITTEN + 2


def test_a_mark_whose_label_cannot_be_printed_is_kept(trace_path):
    tracer.start(str(trace_path))
    tracer.mark(UnprintableError())  # the app passed something odd: no exception for it
    tracer.stop()
    [mark] = [e for e in events_of(trace_path) if e["ev"] == "mark"]
    assert mark["label"] == "<UnprintableError with broken __str__>"


def test_deferred_results_are_what_they_would_be_untraced(trace_path):
    def run():
        seen = []
        d = defer.Deferred()
        d.addCallback(lambda r: r + 1)
        d.addCallback(lambda r: 1 / 0)
        d.addErrback(lambda f: f.type.__name__)
        d.addBoth(seen.append)
        d.callback(1)
        return seen

    untraced = run()
    tracer.start(str(trace_path))
    traced = run()
    tracer.stop()
    assert traced == untraced == ["ZeroDivisionError"]
