"""Protocol and factory behaviour that needs no sockets (ReconnectingClientFactory on a fake clock)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import protocol as twisted_protocol
from twisted.internet import task as twisted_task

from reactor import error, protocol, task
from reactor.failure import Failure


class Greeter(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.append("hello")


def test_makeConnection_attaches_transport_then_calls_connectionMade() -> None:
    p = Greeter()
    assert not p.connected and p.transport is None
    transport: list[str] = []
    p.makeConnection(transport)
    assert p.connected and p.transport is transport and transport == ["hello"]
    assert p.logPrefix() == "Greeter"


def test_buildProtocol_and_forProtocol() -> None:
    factory = protocol.Factory.forProtocol(Greeter)
    assert isinstance(factory, protocol.Factory) and factory.protocol is Greeter
    p = factory.buildProtocol(("127.0.0.1", 1))
    assert isinstance(p, Greeter) and p.factory is factory
    client = protocol.ClientFactory.forProtocol(Greeter)
    assert isinstance(client, protocol.ClientFactory)


def test_doStart_doStop_count_users() -> None:
    calls: list[str] = []

    class Counted(protocol.ServerFactory):
        def startFactory(self) -> None:
            calls.append("start")

        def stopFactory(self) -> None:
            calls.append("stop")

    f = Counted()
    f.doStart()
    f.doStart()
    f.doStop()
    assert calls == ["start"] and f.numPorts == 1
    f.doStop()
    f.doStop()  # one stop too many is ignored
    assert calls == ["start", "stop"] and f.numPorts == 0


class FakeConnector:
    """Counts connect() calls; stopConnecting works only while 'connecting'."""

    def __init__(self) -> None:
        self.connects = 0
        self.connecting = False
        self.stopped = 0

    def connect(self) -> None:
        self.connects += 1
        self.connecting = True

    def stopConnecting(self) -> None:
        if not self.connecting:
            raise error.NotConnectingError()
        self.connecting = False
        self.stopped += 1


def failing(factory: Any, connector: FakeConnector, clock: Any, times: int) -> list[float]:
    """Fail ``times`` connection attempts; return the delay before each retry."""
    delays = []
    for _ in range(times):
        connector.connecting = False
        factory.clientConnectionFailed(connector, Failure(error.ConnectionRefusedError()))
        pending = clock.getDelayedCalls()
        if not pending:
            break
        delays.append(pending[0].getTime() - clock.seconds())
        clock.advance(delays[-1])
    return delays


@pytest.mark.parametrize("jitter", [0, 0.11962656472])
def test_reconnecting_delays_match_twisted(jitter: float) -> None:
    """Same growth, cap and retry limit as Twisted's (jitter off: exactly the same)."""

    def run(module: Any, clock_module: Any) -> tuple[list[float], FakeConnector, Any]:
        factory = module.ReconnectingClientFactory()
        factory.clock = clock_module.Clock()
        factory.maxDelay = 30
        factory.maxRetries = 8
        factory.jitter = jitter
        connector = FakeConnector()
        return failing(factory, connector, factory.clock, 20), connector, factory

    ours, our_connector, our_factory = run(protocol, task)
    theirs, their_connector, _ = run(twisted_protocol, twisted_task)
    assert len(ours) == len(theirs) == 8 and our_connector.connects == their_connector.connects == 8
    assert our_factory.retries == 9
    if jitter:
        assert all(0 < d <= 30 * 1.6 for d in ours)
    else:
        assert ours == pytest.approx(theirs)
        assert ours[0] == protocol.ReconnectingClientFactory.initialDelay and ours[-1] == 30


def test_resetDelay_and_stopTrying() -> None:
    factory = protocol.ReconnectingClientFactory()
    factory.clock = task.Clock()
    factory.jitter = 0
    connector = FakeConnector()
    first = failing(factory, connector, factory.clock, 3)
    factory.resetDelay()
    assert factory.delay == factory.initialDelay and factory.retries == 0
    assert failing(factory, connector, factory.clock, 3) == pytest.approx(first)

    factory.clientConnectionLost(connector, Failure(error.ConnectionLost()))
    assert factory.clock.getDelayedCalls()
    connector.connecting = True
    factory.stopTrying()  # cancels the pending retry and the attempt in progress
    assert factory.clock.getDelayedCalls() == [] and connector.stopped == 1
    factory.stopTrying()  # nothing in progress: NotConnectingError is swallowed
    factory.clientConnectionFailed(connector, Failure(error.ConnectionRefusedError()))
    assert factory.clock.getDelayedCalls() == []


def test_retry_without_a_connector_is_an_error() -> None:
    with pytest.raises(ValueError):
        protocol.ReconnectingClientFactory().retry()


def test_file_wrapper_is_a_transport_writing_to_a_file_as_twisted_s() -> None:
    import io

    from twisted.internet import protocol as twisted_protocol

    from reactor import basic, protocol as our_protocol

    outputs = []
    for module in (our_protocol, twisted_protocol):
        out = io.BytesIO()
        transport = module.FileWrapper(out)
        line = basic.LineReceiver()
        line.makeConnection(transport)
        line.sendLine(b"hello")
        transport.writeSequence([b"a", b"b"])
        written = out.getvalue()
        transport.loseConnection()
        outputs.append((written, transport.closed, out.closed, transport.getPeer(),
                        transport.getHost()))
    assert outputs[0] == outputs[1] == (b"hello\r\nab", 1, True, ("file", "file"), "file")
