"""Message framing over a byte stream, as in ``twisted.protocols.basic``.

TCP delivers bytes in arbitrary pieces: one read may hold half a line, or
forty lines and a bit.  These protocols turn the stream back into messages:
delimited lines (LineReceiver, LineOnlyReceiver), length-prefixed strings
(Int32StringReceiver and friends) or netstrings (NetstringReceiver);
StatefulStringProtocol dispatches strings by state.  FileSender writes a
file to a transport as fast as the peer reads it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any

from reactor import defer, log
from reactor.protocol import Protocol


class _PauseableMixin:
    """Lets a framing protocol be paused as a producer: while paused it stops
    reading and stops delivering messages already buffered."""

    paused = False
    transport: Any
    dataReceived: Callable[[bytes], None]  # the framing protocol's, this is mixed into

    def pauseProducing(self) -> None:
        """Stop reading and stop delivering."""
        self.paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """Read again, and deliver what was held back while paused."""
        self.paused = False
        self.transport.resumeProducing()
        self.dataReceived(b"")

    def stopProducing(self) -> None:
        """Deliver nothing more and close the connection."""
        self.paused = True
        self.transport.stopProducing()


class LineReceiver(Protocol, _PauseableMixin):
    """Splits the stream into lines ending in ``delimiter`` and calls
    ``lineReceived`` for each; ``setRawMode`` switches to passing bytes through
    to ``rawDataReceived`` (e.g. for a body after headers) and ``setLineMode``
    back.

    Lines are found by scanning forward from an offset into the buffer, so a
    read holding many lines costs time linear in its size; the buffer is
    trimmed once per read.  A line longer than ``MAX_LENGTH`` goes to
    ``lineLengthExceeded`` (which by default drops the connection).
    """

    delimiter = b"\r\n"
    MAX_LENGTH = 16384
    line_mode = 1
    _buffer = b""
    _pos = 0
    _busy = False

    def clearLineBuffer(self) -> bytes:
        """Drop and return the bytes received but not yet delivered."""
        rest = self._buffer[self._pos:]
        self._buffer = b""
        self._pos = 0
        return rest

    def dataReceived(self, data: bytes) -> Any:
        """Deliver every complete line (or the raw bytes) in what has arrived."""
        self._buffer += data
        if self._busy:
            # Called from inside lineReceived/rawDataReceived (setLineMode with
            # extra bytes): the outer loop delivers what was just appended.
            return None
        self._busy = True
        try:
            return self._deliver()
        finally:
            self._busy = False
            if self._pos:
                self._buffer = self._buffer[self._pos:]
                self._pos = 0

    def _deliver(self) -> Any:
        while not self.paused:
            buf = self._buffer
            pos = self._pos
            if pos >= len(buf):
                return None
            if self.line_mode:
                delimiter = self.delimiter
                end = buf.find(delimiter, pos)
                if end < 0:
                    if len(buf) - pos >= self.MAX_LENGTH + len(delimiter):
                        return self.lineLengthExceeded(self.clearLineBuffer())
                    return None
                if end - pos > self.MAX_LENGTH:
                    return self.lineLengthExceeded(self.clearLineBuffer())
                self._pos = end + len(delimiter)
                why = self.lineReceived(buf[pos:end])
                if why or (self.transport is not None and self.transport.disconnecting):
                    return why
            else:
                why = self.rawDataReceived(self.clearLineBuffer())
                if why:
                    return why
        return None

    def setLineMode(self, extra: bytes = b"") -> Any:
        """Go back to delivering lines; ``extra`` is data to parse first."""
        self.line_mode = 1
        if extra:
            return self.dataReceived(extra)
        return None

    def setRawMode(self) -> None:
        """Pass all further bytes (including any already buffered) to rawDataReceived."""
        self.line_mode = 0

    def rawDataReceived(self, data: bytes) -> Any:
        """Override to handle bytes received in raw mode."""
        raise NotImplementedError

    def lineReceived(self, line: bytes) -> Any:
        """Override to handle one line (without its delimiter)."""
        raise NotImplementedError

    def sendLine(self, line: bytes) -> None:
        """Write ``line`` followed by the delimiter."""
        self.transport.write(line + self.delimiter)

    def lineLengthExceeded(self, line: bytes) -> Any:
        """A line longer than MAX_LENGTH arrived (``line`` is it plus whatever
        was buffered after it).  The default drops the connection."""
        return self.transport.loseConnection()


class LineOnlyReceiver(Protocol):
    """A simpler, faster line protocol: lines only, no raw mode, no pausing."""

    delimiter = b"\r\n"
    MAX_LENGTH = 16384
    _buffer = b""

    def dataReceived(self, data: bytes) -> Any:
        """Deliver every complete line; keep the incomplete tail."""
        lines = (self._buffer + data).split(self.delimiter)
        self._buffer = lines.pop()
        for line in lines:
            if self.transport.disconnecting:
                return None
            if len(line) > self.MAX_LENGTH:
                return self.lineLengthExceeded(line)
            self.lineReceived(line)
        if len(self._buffer) > self.MAX_LENGTH:
            return self.lineLengthExceeded(self._buffer)
        return None

    def lineReceived(self, line: bytes) -> Any:
        """Override to handle one line (without its delimiter)."""
        raise NotImplementedError

    def sendLine(self, line: bytes) -> None:
        """Write ``line`` followed by the delimiter."""
        self.transport.writeSequence((line, self.delimiter))

    def lineLengthExceeded(self, line: bytes) -> Any:
        """A line longer than MAX_LENGTH arrived; the default drops the connection."""
        return self.transport.loseConnection()


class StringTooLongError(AssertionError):
    """sendString was given a string too long for the length prefix."""


class _Unparsed:
    """``recvd``: the bytes received and not yet parsed, as Twisted's
    IntNStringReceiver shows them.  Reading it is always up to date; a
    ``stringReceived`` that assigns it replaces what is left to parse (an old
    idiom Twisted keeps working, and so do we)."""

    def __get__(self, receiver: Any, owner: type | None = None) -> Any:
        if receiver is None:
            return self
        return receiver._unprocessed[receiver._offset:]


class IntNStringReceiver(Protocol, _PauseableMixin):
    """Strings each preceded by their length as a big-endian unsigned integer
    of ``prefixLength`` bytes (subclasses fix the width)."""

    structFormat: str
    prefixLength: int
    MAX_LENGTH = 99999
    _unprocessed = b""
    _offset = 0  # where in _unprocessed the next string starts (for recvd)
    recvd = _Unparsed()

    def stringReceived(self, string: bytes) -> None:
        """Override to handle one complete string."""
        raise NotImplementedError

    def lengthLimitExceeded(self, length: int) -> None:
        """A prefix announced more than MAX_LENGTH bytes; the default drops the connection."""
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """Deliver every complete string; keep the incomplete tail."""
        buf = self._unprocessed = self._unprocessed + data
        offset = 0
        prefix = self.prefixLength
        fmt = self.structFormat
        while len(buf) >= offset + prefix and not self.paused:
            start = offset + prefix
            (length,) = struct.unpack(fmt, buf[offset:start])
            if length > self.MAX_LENGTH:
                self._unprocessed = buf[offset:]
                self._offset = 0
                self.lengthLimitExceeded(length)
                return
            end = start + length
            if len(buf) < end:
                break
            offset = self._offset = end
            self.stringReceived(buf[start:end])
            if "recvd" in self.__dict__:  # stringReceived replaced what is left
                buf = self._unprocessed = self.__dict__.pop("recvd")
                offset = self._offset = 0
        self._unprocessed = buf[offset:]
        self._offset = 0

    def sendString(self, string: bytes) -> None:
        """Write ``string`` with its length prefix."""
        if len(string) >= 2 ** (8 * self.prefixLength):
            raise StringTooLongError(
                f"Try to send {len(string)} bytes whereas maximum is {2 ** (8 * self.prefixLength)}")
        self.transport.write(struct.pack(self.structFormat, len(string)) + string)


class Int32StringReceiver(IntNStringReceiver):
    """Strings with a 4-byte length prefix."""

    structFormat = "!I"
    prefixLength = 4


class Int16StringReceiver(IntNStringReceiver):
    """Strings with a 2-byte length prefix."""

    structFormat = "!H"
    prefixLength = 2


class Int8StringReceiver(IntNStringReceiver):
    """Strings with a 1-byte length prefix."""

    structFormat = "!B"
    prefixLength = 1


class NetstringParseError(ValueError):
    """The incoming data is not in valid netstring format."""


class IncompleteNetstring(Exception):
    """Not enough data to complete a netstring."""


_NETSTRING_LENGTH = re.compile(rb"0|[1-9][0-9]*")


class NetstringReceiver(Protocol):
    """Netstrings (http://cr.yp.to/proto/netstrings.txt): ``b"5:hello,"``
    carries ``b"hello"``; ``stringReceived`` gets each payload.

    A length with leading zeros, above ``MAX_LENGTH``, not followed by ``:``,
    or a payload not followed by ``,`` is a broken peer: the connection is
    dropped and ``brokenPeer`` set.  A length is refused as soon as its
    digits say it is too long, without waiting for the rest.
    """

    MAX_LENGTH = 99999
    brokenPeer = 0
    _buffer: bytearray | None = None
    _payload_length: int | None = None  # known once the "<digits>:" is read

    def stringReceived(self, string: bytes) -> None:
        """Override to handle one netstring's payload."""
        raise NotImplementedError()

    def sendString(self, string: bytes) -> None:
        """Write ``string`` as a netstring."""
        self.transport.write(b"%d:%s," % (len(string), string))

    def dataReceived(self, data: bytes) -> None:
        """Deliver every complete netstring; keep the incomplete tail."""
        buf = self._buffer
        if buf is None:
            buf = self._buffer = bytearray()
        buf += data
        pos = 0
        try:
            while pos < len(buf):
                if self._payload_length is None:
                    pos = self._read_length(buf, pos)
                    if self._payload_length is None:
                        return  # the length is still arriving
                n = self._payload_length
                end = pos + n
                if len(buf) <= end:
                    return  # the payload (or its comma) is still arriving
                if buf[end] != 44:  # ord(",")
                    raise NetstringParseError(
                        "The received netstring is not terminated by a comma.")
                payload = bytes(buf[pos:end])
                pos = end + 1
                self._payload_length = None
                self.stringReceived(payload)
        except NetstringParseError:
            self.transport.loseConnection()
            self.brokenPeer = 1
        finally:
            del buf[:pos]

    def _read_length(self, buf: bytearray, pos: int) -> int:
        """Parse ``<digits>:`` at ``pos``: set ``_payload_length`` and return
        the payload's start, or return ``pos`` while the digits are incomplete."""
        match = _NETSTRING_LENGTH.match(buf, pos)
        if match is None:
            raise NetstringParseError(
                "The received netstring does not start with a length specification.")
        digits = match.end() - pos
        if digits > len(str(self.MAX_LENGTH)) or int(buf[pos:match.end()]) > self.MAX_LENGTH:
            raise NetstringParseError(
                f"The received netstring is longer than the maximum {self.MAX_LENGTH} "
                "specified by self.MAX_LENGTH")
        if match.end() == len(buf):
            return pos
        if buf[match.end()] != 58:  # ord(":")
            raise NetstringParseError(
                "The received netstring does not start with a length specification.")
        self._payload_length = int(buf[pos:match.end()])
        return match.end() + 1


class StatefulStringProtocol:
    """Mix into a string protocol (NetstringReceiver, Int32StringReceiver...)
    to route each string to ``proto_<state>``, which returns the next state.
    The state starts as ``"init"``; ``"done"`` closes the connection."""

    state = "init"
    transport: Any  # the string protocol's, this is mixed into

    def stringReceived(self, string: bytes) -> None:
        """Call the handler of the current state; it names the next one."""
        handler = getattr(self, "proto_" + self.state, None)
        if handler is None:
            log.msg("callback", self.state, "not found")
            return
        self.state = handler(string)
        if self.state == "done":
            self.transport.loseConnection()


class FileSender:
    """A pull producer that writes a file to a consumer (a transport) a chunk
    at a time, each time the consumer has room, so a large file never sits
    in memory."""

    CHUNK_SIZE = 2 ** 14
    """Bytes read per chunk: a few socket buffers' worth per write."""

    lastSent: bytes = b""
    deferred: defer.Deferred | None = None

    def beginFileTransfer(self, file: Any, consumer: Any,
                          transform: Callable[[bytes], bytes] | None = None) -> defer.Deferred:
        """Send ``file`` to ``consumer``, each chunk through ``transform`` if
        given.  The Deferred fires with the last byte sent once the whole
        file is written (it fails if the consumer stops the transfer)."""
        self.file = file
        self.consumer = consumer
        self.transform = transform
        self.deferred = d = defer.Deferred()
        consumer.registerProducer(self, False)
        return d

    def resumeProducing(self) -> None:
        """The consumer wants more: write the next chunk, or finish."""
        chunk = self.file.read(self.CHUNK_SIZE) if self.file else b""
        if not chunk:
            self.file = None
            self.consumer.unregisterProducer()
            if self.deferred is not None:
                d, self.deferred = self.deferred, None
                d.callback(self.lastSent)
            return
        if self.transform is not None:
            chunk = self.transform(chunk)
        self.consumer.write(chunk)
        self.lastSent = chunk[-1:]

    def pauseProducing(self) -> None:
        """Nothing to do: a pull producer only produces when asked."""

    def stopProducing(self) -> None:
        """The consumer gave up (its connection closed): fail the transfer."""
        if self.deferred is not None:
            d, self.deferred = self.deferred, None
            d.errback(Exception("Consumer asked us to stop producing"))
