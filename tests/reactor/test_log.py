"""reactor.log: Twisted-style observers see what the reactor reports, and
stdlib logging still gets it."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from reactor import Reactor, defer, log
from reactor.failure import Failure


@pytest.fixture
def events() -> Any:
    seen: list[dict] = []
    log.addObserver(seen.append)
    yield seen
    log.removeObserver(seen.append)


def test_err_gives_observers_the_failure_and_stdlib_the_traceback(
        events: list, caplog: pytest.LogCaptureFixture) -> None:
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        with caplog.at_level(logging.ERROR, logger="reactor"):
            log.err(None, "while dividing")
    [event] = events
    assert event["isError"] == 1 and event["why"] == "while dividing"
    assert isinstance(event["failure"], Failure) and event["failure"].check(ZeroDivisionError)
    assert "while dividing" in caplog.text and "ZeroDivisionError" in caplog.text


def test_msg_reaches_observers_with_its_keywords(events: list) -> None:
    log.msg("hello", "world", system="test")
    [event] = events
    assert event["message"] == ("hello", "world") and event["system"] == "test"
    assert event["isError"] == 0
    assert log.textFromEventDict(event) == "hello world"


def test_an_exception_in_a_timed_call_reaches_observers(loop: Reactor, events: list) -> None:
    def boom() -> None:
        raise KeyError("in a timer")

    loop.callLater(0, boom)
    loop.callLater(0.01, loop.stop)
    loop.run(installSignalHandlers=False)
    errors = [e for e in events if e["isError"]]
    assert len(errors) == 1 and errors[0]["failure"].check(KeyError)
    assert "timed call" in errors[0]["why"]


def test_unhandled_failure_in_a_collected_deferred_is_two_events_as_in_twisted(
        events: list) -> None:
    from twisted.internet import defer as twisted_defer
    from twisted.python import log as twisted_log

    twisted_events: list[dict] = []
    gc.collect()  # earlier tests' failing Deferreds left in cycles are reported now, not below
    events.clear()
    twisted_log.addObserver(twisted_events.append)
    try:
        twisted_defer.Deferred().addCallback(lambda _: 1 // 0).callback(1)
        defer.Deferred().addCallback(lambda _: 1 // 0).callback(1)
        gc.collect()
    finally:
        twisted_log.removeObserver(twisted_events.append)
    ours = [e for e in events if e["isError"]]
    theirs = [e for e in twisted_events if e["isError"]]
    assert len(ours) == len(theirs) == 2
    assert ours[0]["message"] == ("Unhandled error in Deferred:",)
    assert ours[1]["failure"].check(ZeroDivisionError)
    assert log.textFromEventDict(ours[1]).startswith("Unhandled Error\nTraceback ")
    assert twisted_log.textFromEventDict(theirs[1]).startswith("Unhandled Error\nTraceback ")


def test_an_observer_that_raises_is_removed_and_others_still_hear(
        events: list, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: dict) -> None:
        raise RuntimeError("observer bug")

    log.addObserver(broken)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        log.msg("first")
        log.msg("second")
    assert [e["message"] for e in events] == [("first",), ("second",)]
    assert "observer bug" in caplog.text
    with pytest.raises(ValueError):
        log.removeObserver(broken)  # already gone


def test_an_error_in_a_protocol_names_its_method_and_connection_not_a_log_context(
        loop: Reactor, run_until: Any, events: list) -> None:
    """Twisted sets a log context ('system' = the transport's logPrefix)
    around every call; loopscope does not (it would cost on every callback):
    the report's ``why`` names the protocol's method and the connection, over
    a real connection on 127.0.0.1."""
    import socket

    from reactor import protocol

    class Custom(protocol.Protocol):
        def logPrefix(self) -> str:
            return "Custom Server"

        def dataReceived(self, data: bytes) -> None:
            raise ValueError("bad request")

        def connectionLost(self, reason: Any = None) -> None:
            reasons.append(reason)
            lost.callback(None)

    lost: defer.Deferred = defer.Deferred()
    reasons: list[Failure] = []
    port = loop.listenTCP(0, protocol.Factory.forProtocol(Custom), interface="127.0.0.1")
    peer = socket.create_connection(("127.0.0.1", port.getHost().port))
    peer.sendall(b"hello")
    run_until(lost)
    peer.close()
    [error] = [e for e in events if e["isError"]]
    assert error["failure"].check(ValueError) and reasons[0].check(ValueError)
    assert error["why"].startswith("Unhandled error in ")
    assert "Custom.dataReceived on <Custom #" in error["why"]
    assert error["system"] == "-"  # no per-call log context
    port.stopListening()
