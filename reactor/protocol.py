"""Protocols and the factories that make them, as in ``twisted.internet.protocol``.

A *protocol* is the per-connection object holding the application's logic; the
transport (``reactor.tcp.Connection``) feeds it bytes and events.  A *factory*
is the long-lived object a listening port or a connector asks for a new
protocol per connection; it is where state shared between connections lives
and it is told when the first port starts using it and the last one stops.

``DatagramProtocol`` (``reactor.udp``) and ``ProcessProtocol``
(``reactor.process``) can be imported from here too, as in Twisted; they
are loaded on first use, since those modules import this one's neighbours.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from reactor import defer
from reactor.error import ConnectionDone, NotConnectingError
from reactor.failure import Failure

log = logging.getLogger("reactor")


connectionDone = Failure(ConnectionDone())
"""The reason of a connection closed cleanly: the default of connectionLost."""
connectionDone.cleanFailure()


class BaseProtocol:
    """What every protocol has: a transport, and a hook for when it arrives."""

    connected: int = 0
    transport: Any = None

    def makeConnection(self, transport: Any) -> None:
        """Attach ``transport`` and tell the protocol it is connected.

        Transports call this rather than connectionMade so that a protocol can
        wrap the moment of attachment (Twisted's wrappers rely on it)."""
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """Called once the connection is up; override to start talking."""


class Protocol(BaseProtocol):
    """A stream protocol: receives bytes in arbitrary chunks, then a close.

    Bytes arrive in whatever pieces TCP delivers them; a protocol that needs
    messages must frame them itself (see ``reactor.basic``)."""

    factory: Any = None

    def logPrefix(self) -> str:
        """The name used for this protocol in log lines."""
        return self.__class__.__name__

    def dataReceived(self, data: bytes) -> None:
        """Called with each chunk of bytes read from the connection."""

    def connectionLost(self, reason: Any = connectionDone) -> None:
        """Called once when the connection is gone; ``reason`` is a Failure
        wrapping ConnectionDone (clean close) or ConnectionLost (anything else)."""


class FileWrapper:
    """A transport that writes to a file object: a protocol under test can
    be given one (``protocol.makeConnection(FileWrapper(io.BytesIO()))``) and
    its output read back from the file, as with Twisted's."""

    closed = 0
    disconnecting = 0
    producer: Any = None
    streamingProducer = 0

    def __init__(self, file: Any) -> None:
        self.file = file

    def write(self, data: bytes) -> None:
        """Write ``data`` to the file (an error writing is ignored, as Twisted does)."""
        try:
            self.file.write(data)
        except Exception:  # noqa: BLE001 - the wrapped file's error goes to handleException, as in Twisted
            self.handleException()

    def writeSequence(self, iovec: Any) -> None:
        """Write several byte strings."""
        self.write(b"".join(iovec))

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Attach a producer; a pull producer is asked for data at once."""
        self.producer = producer
        self.streamingProducer = streaming
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        """Detach the producer."""
        self.producer = None

    def stopConsuming(self) -> None:
        """Detach the producer and close."""
        self.unregisterProducer()
        self.loseConnection()

    def loseConnection(self) -> None:
        """Close the file."""
        self.closed = 1
        try:
            self.file.close()
        except OSError:
            self.handleException()

    def getPeer(self) -> Any:
        return ("file", "file")

    def getHost(self) -> Any:
        return "file"

    def handleException(self) -> None:
        """Called when a write fails; does nothing."""

    def pauseProducing(self) -> None:
        """Nothing to pause: a file is never read."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Close."""
        self.loseConnection()


class Factory:
    """Makes a protocol per connection and is told when it is in use.

    ``doStart``/``doStop`` count the ports and connectors using the factory, so
    ``startFactory`` runs once before the first and ``stopFactory`` once after
    the last, however many ports share it."""

    protocol: Any = None
    noisy: bool = True
    numPorts: int = 0

    @classmethod
    def forProtocol(cls, protocol: Any, *args: Any, **kwargs: Any) -> Factory:
        """A factory of this class whose ``buildProtocol`` makes ``protocol``."""
        factory = cls(*args, **kwargs)
        factory.protocol = protocol
        return factory

    def logPrefix(self) -> str:
        """The name used for this factory in log lines."""
        return self.__class__.__name__

    def doStart(self) -> None:
        """A port or connector starts using this factory."""
        if not self.numPorts:
            if self.noisy:
                log.debug("Starting factory %r", self)
            self.startFactory()
        self.numPorts += 1

    def doStop(self) -> None:
        """A port or connector stops using this factory."""
        if self.numPorts == 0:
            return
        self.numPorts -= 1
        if not self.numPorts:
            if self.noisy:
                log.debug("Stopping factory %r", self)
            self.stopFactory()

    def startFactory(self) -> None:
        """Override to acquire resources (open files, DB pools) on first use."""

    def stopFactory(self) -> None:
        """Override to release what startFactory acquired."""

    def buildProtocol(self, addr: Any) -> Any:
        """Make the protocol for a new connection from/to ``addr``.

        Returning None refuses the connection (the transport closes it)."""
        p = self.protocol()
        p.factory = self
        return p


class ServerFactory(Factory):
    """A factory for listening ports; a separate name so intent is explicit."""


class ClientFactory(Factory):
    """A factory for outgoing connections, told how each attempt went."""

    def startedConnecting(self, connector: Any) -> None:
        """A connection attempt has started; ``connector.stopConnecting()``
        may abort it."""

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        """The attempt failed (refused, timed out, unresolvable...);
        ``connector.connect()`` tries again."""

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        """An established connection ended; ``connector.connect()`` reconnects."""


class ReconnectingClientFactory(ClientFactory):
    """A client factory that reconnects after a failure or a lost connection.

    Delays grow exponentially (``factor``) up to ``maxDelay``, with Gaussian
    ``jitter`` so that many clients of one restarted server do not all retry at
    the same instant.  Call ``resetDelay()`` once a connection is known good
    (typically in ``buildProtocol`` or the protocol's ``connectionMade``), and
    ``stopTrying()`` to give up for good."""

    maxDelay: float = 3600.0
    initialDelay: float = 1.0
    factor: float = 2.7182818284590451
    jitter: float = 0.11962656472
    delay: float = initialDelay
    retries: int = 0
    maxRetries: int | None = None
    continueTrying: bool = True
    clock: Any = None
    connector: Any = None
    _callID: Any = None

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        """Try again later (subclasses that override this should call it)."""
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        """Reconnect later (subclasses that override this should call it)."""
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def retry(self, connector: Any = None) -> None:
        """Schedule the next attempt after the current delay (``initialDelay``
        the first time), then grow the delay for the one after."""
        if not self.continueTrying:
            return
        if connector is None:
            if self.connector is None:
                raise ValueError("no connector to retry")
            connector = self.connector
        self.retries += 1
        if self.maxRetries is not None and self.retries > self.maxRetries:
            log.info("Abandoning %r after %d retries.", connector, self.maxRetries)
            return
        if self.jitter:
            self.delay = random.normalvariate(self.delay, self.delay * self.jitter)
        if self.clock is None:
            from reactor import reactor as default_reactor

            self.clock = default_reactor

        def reconnect() -> None:
            self._callID = None
            connector.connect()

        self._callID = self.clock.callLater(self.delay, reconnect)
        self.delay = min(self.delay * self.factor, self.maxDelay)

    def stopTrying(self) -> None:
        """Cancel the scheduled retry and any attempt in progress; retry no more."""
        if self._callID is not None:
            self._callID.cancel()
            self._callID = None
        self.continueTrying = False
        if self.connector is not None:
            try:
                self.connector.stopConnecting()
            except NotConnectingError:
                pass

    def resetDelay(self) -> None:
        """Forget past failures: the next retry waits ``initialDelay`` again."""
        self.delay = self.initialDelay
        self.retries = 0
        self._callID = None
        self.continueTrying = True


class _InstanceFactory(ClientFactory):
    """The factory behind ClientCreator: hands out its one protocol and fires
    the caller's Deferred from the loop (never from inside connect())."""

    noisy = False
    pending: Any = None

    def __init__(self, reactor: Any, instance: Any, deferred: defer.Deferred) -> None:
        self.reactor = reactor
        self.instance = instance
        self.deferred: defer.Deferred | None = deferred

    def __repr__(self) -> str:
        return f"<ClientCreator factory: {self.instance!r}>"

    def _take_deferred(self) -> defer.Deferred:
        """The caller's Deferred, given one outcome only (then forgotten)."""
        d, self.deferred = self.deferred, None
        assert d is not None, "a second outcome for one connection attempt"
        return d

    def buildProtocol(self, addr: Any) -> Any:
        self.pending = self.reactor.callLater(0, self._fire, self._take_deferred().callback,
                                              self.instance)
        return self.instance

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.pending = self.reactor.callLater(0, self._fire, self._take_deferred().errback,
                                              reason)

    def _fire(self, f: Any, value: Any) -> None:
        self.pending = None  # no cycle through the delayed call
        f(value)


class ClientCreator:
    """Connect one protocol instance without writing a factory.

    ``ClientCreator(reactor, ProtocolClass, *args, **kw).connectTCP(host,
    port)`` makes ``ProtocolClass(*args, **kw)``, connects it and returns a
    Deferred of the connected protocol.  Cancelling the Deferred aborts the
    attempt (and, if the connection was already made, closes it)."""

    def __init__(self, reactor: Any, protocolClass: Any, *args: Any, **kwargs: Any) -> None:
        self.reactor = reactor
        self.protocolClass = protocolClass
        self.args = args
        self.kwargs = kwargs

    def _connect(self, method: Any, *args: Any, **kwargs: Any) -> defer.Deferred:
        def cancel(_: defer.Deferred) -> None:
            connector.disconnect()
            if factory.pending is not None:
                factory.pending.cancel()

        d = defer.Deferred(cancel)
        factory = _InstanceFactory(self.reactor, self.protocolClass(*self.args, **self.kwargs), d)
        connector = method(*args, factory=factory, **kwargs)
        return d

    def connectTCP(self, host: str, port: int, timeout: float = 30,
                   bindAddress: Any = None) -> defer.Deferred:
        """As reactor.connectTCP, without the factory."""
        return self._connect(self.reactor.connectTCP, host, port, timeout=timeout,
                             bindAddress=bindAddress)

    def connectUNIX(self, address: str, timeout: float = 30,
                    checkPID: bool = False) -> defer.Deferred:
        """As reactor.connectUNIX, without the factory."""
        return self._connect(self.reactor.connectUNIX, address, timeout=timeout,
                             checkPID=checkPID)

    def connectSSL(self, host: str, port: int, contextFactory: Any, timeout: float = 30,
                   bindAddress: Any = None) -> defer.Deferred:
        """As reactor.connectSSL, without the factory."""
        return self._connect(self.reactor.connectSSL, host, port, contextFactory=contextFactory,
                             timeout=timeout, bindAddress=bindAddress)


_ELSEWHERE = {"DatagramProtocol": "reactor.udp", "ProcessProtocol": "reactor.process"}


def __getattr__(name: str) -> Any:
    """The protocol classes that live with their transports (PEP 562)."""
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
