"""``reactor.resolve(name)``: a host name's IPv4 address as a Deferred, as
Twisted's default (threaded) resolver gives it.

The lookup (``getaddrinfo``) can block for seconds, so it runs in the
reactor's thread pool; the answer comes back to the loop.  ``timeout`` is
Twisted's sequence of retry delays: their sum bounds the wait, after which
the Deferred fails with DNSLookupError (the lookup itself cannot be
interrupted; its late answer is dropped).  Cancelling the Deferred gives up
the same way.  ``reactor.installResolver`` replaces this lookup (tests give a
fake one; connectTCP to a host name asks the installed resolver too).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any, cast

from reactor import defer, error
from reactor.failure import Failure
from reactor.threads import deferToThreadPool

DEFAULT_TIMEOUT = 60
"""Seconds to wait when ``timeout`` is empty, as Twisted."""


def _first_ipv4(name: str) -> str:
    address, _ = cast("tuple[str, int]", socket.getaddrinfo(
        name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4])  # AF_INET asked
    return address


def _is_ipv4(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, name)
    except OSError:
        return False
    return True


def resolve_with(resolver: Any, name: str, timeout: Sequence[float]) -> defer.Deferred:
    """``reactor.resolve``: an empty name is ``"0.0.0.0"`` and an IPv4 literal
    itself, at once, as Twisted; any other name is the resolver's to answer
    (``getHostByName``, Twisted's IResolverSimple)."""
    if not name:
        return defer.succeed("0.0.0.0")
    if _is_ipv4(name):
        return defer.succeed(name)
    return resolver.getHostByName(name, timeout)


class ThreadedResolver:
    """The default resolver: a lookup in the reactor's thread pool (see the
    module docstring)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def getHostByName(self, name: str,
                      timeout: Sequence[float] = (1, 3, 11, 45)) -> defer.Deferred:
        """The Deferred of ``name``'s first IPv4 address."""
        return _look_up(self.reactor, name, timeout)


def _look_up(reactor: Any, name: str, timeout: Sequence[float]) -> defer.Deferred:
    """``name``'s first IPv4 address, from the pool, bounded by ``timeout``."""

    def give_up(d: defer.Deferred) -> None:
        if timer.active():
            timer.cancel()

    answer = defer.Deferred(give_up)

    def timed_out() -> None:
        answer.errback(error.DNSLookupError(f"address {name!r} not found: timeout error"))

    def arrived(result: Any) -> None:
        if answer.called:
            return  # timed out or cancelled meanwhile
        timer.cancel()
        if isinstance(result, Failure):
            answer.errback(error.DNSLookupError(
                f"address {name!r} not found: {result.getErrorMessage()}"))
        else:
            answer.callback(result)

    timer = reactor.callLater(sum(timeout) if timeout else DEFAULT_TIMEOUT, timed_out)
    deferToThreadPool(reactor, reactor.getThreadPool(), _first_ipv4, name).addBoth(arrived)
    return answer
