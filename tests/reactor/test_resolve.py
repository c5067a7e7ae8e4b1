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
