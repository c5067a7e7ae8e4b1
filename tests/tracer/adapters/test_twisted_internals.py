"""The Twisted internals the Twisted adapter wraps or reads are still there, in the installed
Twisted (tracer.adapters.twisted_reactor.INTERNALS): when a release renames one, this fails,
loudly, rather than the adapter going blind without a word."""

import asyncio
import inspect

import pytest
from twisted.internet import (
    asyncioreactor,
    base,
    defer,
    epollreactor,
    pollreactor,
)

from tracer.adapters.twisted_reactor import INTERNALS


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def check_do_read_or_write() -> None:
    assert parameters(epollreactor.EPollReactor._doReadOrWrite) == ["self", "selectable", "fd", "event"]
    for reactor_class in (epollreactor.EPollReactor, pollreactor.PollReactor):
        source = inspect.getsource(reactor_class.doPoll)
        assert "self._doReadOrWrite" in source and "self._poller.poll(" in source


def check_read_or_write() -> None:
    assert parameters(asyncioreactor.AsyncioSelectorReactor._readOrWrite) == ["self", "selectable", "read"]
    assert "self._readOrWrite" in inspect.getsource(asyncioreactor.AsyncioSelectorReactor.addReader)


def check_pollers() -> None:
    for reactor_class in (epollreactor.EPollReactor, pollreactor.PollReactor):
        reactor = reactor_class()
        try:
            for name in ("poll", "register", "modify", "unregister"):
                assert callable(getattr(reactor._poller, name))
        finally:
            reactor._poller.close() if hasattr(reactor._poller, "close") else None


def check_selector() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert callable(loop._selector.select)
        reactor = asyncioreactor.AsyncioSelectorReactor(loop)
        assert reactor._asyncioEventloop is loop
    finally:
        loop.close()


def check_poll_bits() -> None:
    for reactor_class in (epollreactor.EPollReactor, pollreactor.PollReactor):
        assert isinstance(reactor_class._POLL_IN, int) and isinstance(reactor_class._POLL_DISCONNECTED, int)


def check_cancel_call_later() -> None:
    assert parameters(base.ReactorBase._cancelCallLater) == ["self", "delayedCall"]
    assert "self._cancelCallLater" in inspect.getsource(base.ReactorBase.callLater)
    assert "self.canceller(self)" in inspect.getsource(base.DelayedCall.cancel)


def check_internal_readers() -> None:
    reactor = epollreactor.EPollReactor()
    assert reactor.waker in reactor._internalReaders


def check_callbacks() -> None:
    d = defer.Deferred()
    d.addCallback(print)
    chain = d.__dict__.get("_callbacks", d.__dict__.get("callbacks"))
    assert chain[0][0][0] is print


def check_run_callbacks() -> None:
    d = defer.Deferred()
    ran = []
    d.addCallback(lambda _: ran.append(inspect.currentframe().f_back.f_code))
    d.callback(None)
    assert ran == [defer.Deferred._runCallbacks.__code__]  # it calls the callbacks itself


CHECKS = {
    "EPollReactor._doReadOrWrite(selectable, fd, event), PollReactor's": check_do_read_or_write,
    "AsyncioSelectorReactor._readOrWrite(selectable, read)": check_read_or_write,
    "EPollReactor()._poller, PollReactor()._poller": check_pollers,
    "asyncio loop._selector.select": check_selector,
    "_POLL_IN, _POLL_DISCONNECTED of the epoll and poll reactors": check_poll_bits,
    "ReactorBase._cancelCallLater(call)": check_cancel_call_later,
    "ReactorBase()._internalReaders": check_internal_readers,
    "Deferred()._callbacks (callbacks before Twisted 25.5), read only": check_callbacks,
    "Deferred._runCallbacks, its code only": check_run_callbacks,
}


def test_every_internal_relied_on_has_a_check():
    assert set(CHECKS) == set(INTERNALS)


@pytest.mark.parametrize("internal", sorted(INTERNALS))
def test_the_installed_twisted_still_has(internal):
    CHECKS[internal]()
