"""The roles objects play for the reactor, as plain classes a user may subclass.

Twisted declares these with zope.interface; here they are ordinary base
classes so that the seed's ``class MySocket(IReadDescriptor)`` works as
written.  The reactor itself duck-types: any object with the right methods is
accepted whether or not it subclasses these.  ``IFoo.providedBy(obj)`` answers
the Twisted question "does obj have what IFoo needs?" — except for an
interface whose mere presence changes behaviour (IHalfCloseableProtocol),
which must be declared: by subclassing, with :func:`implementer`, or with
zope.interface's ``@implementer`` of Twisted's interface.
"""

from __future__ import annotations

from typing import Any


class Interface:
    """Base of every interface: names the methods a provider must have."""

    _methods: tuple[str, ...] = ()
    # True for an interface that changes what the reactor does, so that having
    # methods of the right names by chance must not count: only subclassing,
    # @implementer, or a zope.interface declaration of Twisted's interface of
    # the same name does.
    _by_declaration_only = False

    @classmethod
    def providedBy(cls, obj: object) -> bool:
        """True if ``obj`` subclasses this interface or declares it; for an
        interface that is not declaration-only, also if it has all its methods."""
        if isinstance(obj, cls) or _declares(obj, cls):
            return True
        if cls._by_declaration_only:
            return False
        required = {name for klass in cls.__mro__ for name in getattr(klass, "_methods", ())}
        return all(callable(getattr(obj, name, None)) for name in required)


def implementer(*interfaces: type[Interface]) -> Any:
    """Class decorator declaring that instances provide ``interfaces``
    (``@implementer(IHalfCloseableProtocol)``, as with zope.interface)."""

    def declare(cls: type) -> type:
        declared = set(getattr(cls, "__loopscope_implements__", ()))
        target: Any = cls  # any class may be declared: the attribute is ours
        target.__loopscope_implements__ = frozenset(declared | {i.__name__ for i in interfaces})
        return cls

    return declare


def _declares(obj: object, interface: type[Interface]) -> bool:
    """Whether ``obj``'s class declares ``interface``: with :func:`implementer`,
    or with zope.interface naming Twisted's interface of the same name (so a
    protocol written for Twisted keeps working unchanged).  zope is never
    imported: its declaration is read from the attributes it sets."""
    name = interface.__name__
    if name in getattr(type(obj), "__loopscope_implements__", ()):
        return True
    spec = getattr(type(obj), "__implemented__", None)
    flattened = getattr(spec, "flattened", None)
    if flattened is None:
        return False
    try:
        return any(getattr(i, "__name__", None) == name
                   and getattr(i, "__module__", "") == "twisted.internet.interfaces"
                   for i in flattened())
    except Exception:  # noqa: BLE001 - a foreign declaration we cannot read is none
        return False


class IAddress(Interface):
    """An address (e.g. IPv4Address with ``host`` and ``port``)."""


class ILoggingContext(Interface):
    """Something that names itself in log messages."""

    _methods: tuple[str, ...] = ("logPrefix",)

    def logPrefix(self) -> str:
        """The prefix for log lines about this object: by default its class name."""
        return type(self).__name__


class IFileDescriptor(ILoggingContext):
    """Something the reactor watches: it has a file descriptor and can be told it ended."""

    _methods: tuple[str, ...] = ("fileno", "connectionLost")

    def fileno(self) -> int:
        """The OS file descriptor to watch; -1 if it has gone away (the reactor then drops it)."""
        raise NotImplementedError

    def connectionLost(self, reason: Any) -> None:
        """Called once when the reactor stops watching this for good; ``reason`` is a Failure."""
        raise NotImplementedError


class IReadDescriptor(IFileDescriptor):
    """A file descriptor the reactor reads from."""

    _methods: tuple[str, ...] = ("doRead",)

    def doRead(self) -> object:
        """Data is available.  Return None to go on, or an exception such as
        ``CONNECTION_DONE`` / ``CONNECTION_LOST`` to end the descriptor."""
        raise NotImplementedError


class IWriteDescriptor(IFileDescriptor):
    """A file descriptor the reactor writes to."""

    _methods: tuple[str, ...] = ("doWrite",)

    def doWrite(self) -> object:
        """The descriptor is writable.  Same return convention as ``doRead``."""
        raise NotImplementedError


class IReadWriteDescriptor(IReadDescriptor, IWriteDescriptor):
    """A file descriptor the reactor both reads from and writes to."""


class IHalfCloseableDescriptor(Interface):
    """A descriptor that can be told each direction closed on its own."""

    _methods: tuple[str, ...] = ("readConnectionLost", "writeConnectionLost")

    def readConnectionLost(self, reason: Any) -> None:
        """The read side closed; writing may go on."""
        raise NotImplementedError

    def writeConnectionLost(self, reason: Any) -> None:
        """The write side closed; reading may go on."""
        raise NotImplementedError


class IProtocol(Interface):
    """The application side of a connection (see ``reactor.protocol.Protocol``)."""

    _methods: tuple[str, ...] = ("makeConnection", "connectionMade", "dataReceived", "connectionLost")

    def makeConnection(self, transport: Any) -> None:
        """Attach the transport and call connectionMade."""
        raise NotImplementedError

    def connectionMade(self) -> None:
        """The connection is up."""
        raise NotImplementedError

    def dataReceived(self, data: bytes) -> None:
        """Bytes arrived (in chunks of any size)."""
        raise NotImplementedError

    def connectionLost(self, reason: Any) -> None:
        """The connection ended; ``reason`` is a Failure of ConnectionDone or ConnectionLost."""
        raise NotImplementedError


class IHalfCloseableProtocol(Interface):
    """A protocol that wants to hear about each direction closing separately.

    Declaration only, as in Twisted: a protocol that subclasses this or is
    decorated ``@implementer(IHalfCloseableProtocol)`` is kept open for
    writing when the peer sends EOF; one that merely has a method called
    ``readConnectionLost`` is closed like any other."""

    _methods: tuple[str, ...] = ("readConnectionLost", "writeConnectionLost")
    _by_declaration_only = True

    def readConnectionLost(self) -> None:
        """The peer will send no more data."""
        raise NotImplementedError

    def writeConnectionLost(self) -> None:
        """We will send no more data."""
        raise NotImplementedError


class IProtocolFactory(Interface):
    """Makes protocols for new connections."""

    _methods: tuple[str, ...] = ("buildProtocol", "doStart", "doStop")

    def buildProtocol(self, addr: Any) -> Any:
        """A protocol for a connection with ``addr``, or None to refuse it."""
        raise NotImplementedError

    def doStart(self) -> None:
        """Called before the first connection is handled."""
        raise NotImplementedError

    def doStop(self) -> None:
        """Called after the last connection is gone."""
        raise NotImplementedError


class ITransport(Interface):
    """The reactor side of a connection, as a protocol sees it."""

    _methods: tuple[str, ...] = ("write", "writeSequence", "loseConnection", "getPeer", "getHost")

    def write(self, data: bytes) -> None:
        """Queue bytes to send; never blocks."""
        raise NotImplementedError

    def writeSequence(self, data: Any) -> None:
        """Queue several byte strings to send."""
        raise NotImplementedError

    def loseConnection(self) -> None:
        """Close after the queued bytes are sent."""
        raise NotImplementedError

    def getPeer(self) -> Any:
        """The remote address."""
        raise NotImplementedError

    def getHost(self) -> Any:
        """The local address."""
        raise NotImplementedError


class ITCPTransport(ITransport):
    """A TCP transport: adds half-close and abort."""

    _methods: tuple[str, ...] = ("loseWriteConnection", "abortConnection")

    def loseWriteConnection(self) -> None:
        """Send FIN after the queued bytes; keep reading."""
        raise NotImplementedError

    def abortConnection(self) -> None:
        """Close now, dropping queued bytes."""
        raise NotImplementedError


class IProducer(Interface):
    """Produces data for a consumer."""

    _methods: tuple[str, ...] = ("stopProducing",)

    def stopProducing(self) -> None:
        """Stop for good; the consumer is going away."""
        raise NotImplementedError


class IPushProducer(IProducer):
    """A producer that writes on its own until told to pause."""

    _methods: tuple[str, ...] = ("pauseProducing", "resumeProducing")

    def pauseProducing(self) -> None:
        """The consumer's buffer is full: stop writing until resumed."""
        raise NotImplementedError

    def resumeProducing(self) -> None:
        """The consumer drained: go on writing."""
        raise NotImplementedError


class IPullProducer(IProducer):
    """A producer that writes one chunk each time it is asked."""

    _methods: tuple[str, ...] = ("resumeProducing",)

    def resumeProducing(self) -> None:
        """Write one more chunk."""
        raise NotImplementedError


class IConsumer(Interface):
    """Accepts data from a producer (a transport is one)."""

    _methods: tuple[str, ...] = ("registerProducer", "unregisterProducer", "write")

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Attach ``producer``; ``streaming`` True for a push producer."""
        raise NotImplementedError

    def unregisterProducer(self) -> None:
        """Detach the producer."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Accept bytes."""
        raise NotImplementedError


class IListeningPort(Interface):
    """What listenTCP returns."""

    _methods: tuple[str, ...] = ("startListening", "stopListening", "getHost")

    def startListening(self) -> None:
        """Start accepting connections."""
        raise NotImplementedError

    def stopListening(self) -> Any:
        """Stop accepting; returns a Deferred fired once the socket is closed."""
        raise NotImplementedError

    def getHost(self) -> Any:
        """The address listened on."""
        raise NotImplementedError


class IConnector(Interface):
    """What connectTCP returns."""

    _methods: tuple[str, ...] = ("stopConnecting", "disconnect", "connect", "getDestination")

    def stopConnecting(self) -> None:
        """Abandon an attempt in progress."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Stop connecting or drop the connection, whichever applies."""
        raise NotImplementedError

    def connect(self) -> None:
        """Try (again) to connect."""
        raise NotImplementedError

    def getDestination(self) -> Any:
        """The address being connected to."""
        raise NotImplementedError


class IDelayedCall(Interface):
    """What callLater returns."""

    _methods: tuple[str, ...] = ("getTime", "cancel", "delay", "reset", "active")

    def getTime(self) -> float:
        """When the call is due, in the reactor's ``seconds()`` clock."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Do not run it (AlreadyCalled / AlreadyCancelled otherwise)."""
        raise NotImplementedError

    def delay(self, secondsLater: float) -> None:
        """Move it later by ``secondsLater``."""
        raise NotImplementedError

    def reset(self, secondsFromNow: float) -> None:
        """Make it due ``secondsFromNow`` from now."""
        raise NotImplementedError

    def active(self) -> bool:
        """Neither called nor cancelled yet."""
        raise NotImplementedError
