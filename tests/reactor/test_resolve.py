"""reactor.resolve: IPv4 lookups in the thread pool, as Twisted's threaded resolver."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from twisted.internet import reactor as treactor

from reactor import Reactor, error
from reactor.defer import CancelledError

pytestmark = pytest.mark.timeout(30)


def test_literals_and_empty_names_answer_at_once(loop: Reactor) -> None:
    for name, expected in (("", "0.0.0.0"), ("127.0.0.1", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")):
        d = loop.resolve(name)
        got = []
        d.addCallback(got.append)
        assert got == [expected]
        tgot = []
        treactor.resolve(name).addCallback(tgot.append)
        assert tgot == got  # Twisted answers these without a lookup too


def test_a_name_is_looked_up_off_the_loop(loop: Reactor, run_until: Any) -> None:
    assert run_until(loop.resolve("localhost")) == socket.gethostbyname("localhost")
    threads = {t.name for t in threading.enumerate()}
    assert any("reactor" in name for name in threads)  # the pool did the lookup


def test_unknown_names_fail_with_dns_lookup_error(loop: Reactor, run_until: Any) -> None:
    with pytest.raises(error.DNSLookupError, match="not found"):
        run_until(loop.resolve("no-such-host.invalid"))


def test_the_timeout_bounds_the_wait(loop: Reactor, run_until: Any) -> None:
    # Block the only pool thread, so the lookup cannot even start in time.
    release = threading.Event()
    loop.suggestThreadPoolSize(1)
    loop.callInThread(release.wait, 10)
    try:
        with pytest.raises(error.DNSLookupError, match="timeout error"):
            run_until(loop.resolve("localhost", timeout=(0.05, 0.05)))
    finally:
        release.set()


def test_cancelling_gives_up(loop: Reactor, run_until: Any) -> None:
    d = loop.resolve("localhost")
    d.cancel()
    with pytest.raises(CancelledError):
        run_until(d)
    assert not [c for c in loop.getDelayedCalls() if c.active()]  # the timer went with it


class FakeResolver:
    """Answers names from a dict, as Twisted's test resolvers do."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[tuple[str, Any]] = []

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:
        from reactor import defer

        self.asked.append((name, timeout))
        if name in self.names:
            return defer.succeed(self.names[name])
        return defer.fail(error.DNSLookupError(name))


@pytest.mark.parametrize("answer", ["127.0.0.1", "::1"])
def test_an_installed_resolver_answers_resolve_and_connect_tcp(
        loop: Reactor, run_until: Any, answer: str) -> None:
    from reactor import protocol

    fake = FakeResolver({"service.example": answer})
    assert loop.installResolver(fake) is None  # none was installed
    assert run_until(loop.resolve("service.example", timeout=(2,))) == answer
    assert fake.asked == [("service.example", (2,))]
    assert run_until(loop.resolve("127.0.0.1")) == "127.0.0.1"  # literals: no question
    assert len(fake.asked) == 1

    made = protocol.Factory.forProtocol(protocol.Protocol)
    port = loop.listenTCP(0, made, interface=answer)
    connected = protocol.ClientCreator(loop, protocol.Protocol).connectTCP(
        "service.example", port.getHost().port)
    p = run_until(connected)
    assert p.transport.getPeer().host == answer  # the address connected to, not the name
    p.transport.loseConnection()
    with pytest.raises(error.DNSLookupError):
        run_until(protocol.ClientCreator(loop, protocol.Protocol).connectTCP(
            "unknown.example", port.getHost().port))
    assert loop.installResolver(None) is fake
    port.stopListening()
