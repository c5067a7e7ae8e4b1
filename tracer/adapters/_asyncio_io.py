"""asyncio's descriptors and connections: readers and writers (``fdadd``/``fdrm``), the
callbacks they run (``read``/``write`` calls named after the protocol method), and socket
transports (``conn``/``close``, with the peer and the bytes).

A reader or writer is a plain ``Handle`` the selector keeps and the loop runs each time the
descriptor is ready.  When it is registered its class becomes one of the subclasses below
(they add no slot, so the object stays as it is): the loop then tells a read from a write or
any other handle by its class, which costs less than looking it up.  The bytes of a TCP connection come from the kernel
(``TCP_INFO``, read just before the socket closes) rather than from counting each send and
receive: the count costs nothing while the connection runs.  ``out`` is the bytes the peer
acknowledged; for other sockets (Unix) the byte counts are absent.
"""

from __future__ import annotations

import socket
import struct
import time
from asyncio import events, selector_events, transports
from selectors import _fileobj_to_fd  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from tracer.adapters._loop_calls import record
from tracer.recorder import cut, safe_text

if TYPE_CHECKING:
    from tracer.session import Tracer

_now = time.monotonic_ns
#: Offset of tcpi_bytes_acked (then tcpi_bytes_received) in Linux's struct tcp_info; its
#: first byte is tcpi_state.
_TCP_INFO_BYTES = 120
_TCP_INFO_LEN = _TCP_INFO_BYTES + 16
#: The kernel counts sequence numbers, so a SYN or FIN counts as one byte.  States (Linux's
#: numbers) in which the peer's FIN was received: TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING;
#: in which ours was acknowledged: FIN_WAIT2, TIME_WAIT.  (The connecting side's own SYN is
#: counted as acknowledged too; the accepting side's is not.)
_PEER_FIN_IN = frozenset({6, 8, 9, 11})
_OWN_FIN_ACKED = frozenset({5, 6})


def address(addr: Any) -> str | None:
    """``host:port`` of an IP address, a Unix socket's path (``unix`` when unnamed)."""
    if addr is None:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return cut(f"{addr[0]}:{addr[1]}")
    if isinstance(addr, str):
        return cut(addr) if addr else "unix"
    return safe_text(addr)


def tcp_bytes(sock: Any, connected_out: bool) -> tuple[int, int] | None:
    """``(received, sent and acknowledged)`` over a TCP socket's life, from the kernel
    (``connected_out``: this side connected, rather than accepted)."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 256)
    except OSError:
        return None
    if len(info) < _TCP_INFO_LEN:
        return None
    acked, received = struct.unpack_from("<QQ", info, _TCP_INFO_BYTES)
    state = info[0]
    received -= state in _PEER_FIN_IN
    acked -= connected_out + (state in _OWN_FIN_ACKED)
    return max(received, 0), max(acked, 0)


class ReaderHandle(events.Handle):
    """A reader's handle."""

    __slots__ = ()


class TransportReaderHandle(events.Handle):
    """A socket transport's reader: its calls are named after the protocol method."""

    __slots__ = ()


class WriterHandle(events.Handle):
    """A writer's handle."""

    __slots__ = ()


class Descriptors:
    """Readers and writers of the loops, and the connections of their socket transports."""

    def __init__(self, session: Tracer) -> None:
        self.session = session
        self.t0 = session.recorder.t0
        #: The C probe's table id(source) -> fd: a read/write call's source is its Handle.
        self._fds: dict[int, int] = session.probe._fds
        self._by_fd: dict[tuple[int, str], Any] = {}

    def added(self, fd: Any, mode: str, handle: Any, callback: Callable[..., Any]) -> None:
        """``_add_reader`` (mode ``r``) or ``_add_writer`` (``w``) registered ``handle``."""
        try:
            number = _fileobj_to_fd(fd)
        except ValueError:
            return
        owner = getattr(callback, "__self__", None)
        if mode == "w":
            handle.__class__ = WriterHandle
        elif (getattr(callback, "__name__", "") == "_read_ready"
                and isinstance(owner, selector_events._SelectorSocketTransport)):  # type: ignore[attr-defined]
            handle.__class__ = TransportReaderHandle
        else:
            handle.__class__ = ReaderHandle
        old = self._by_fd.get((number, mode))
        if old is not None:
            self._forget(old)
        self._by_fd[(number, mode)] = handle
        self._fds[id(handle)] = number
        if old is None:
            record(self.session, {"t": _now() - self.t0, "ev": "fdadd", "fd": number,
                                  "mode": mode, "type": cut(_descriptor_type(owner, callback))})

    def removed(self, fd: Any, mode: str) -> None:
        """``_remove_reader`` / ``_remove_writer`` of ``fd``."""
        try:
            number = _fileobj_to_fd(fd)
        except ValueError:
            return
        handle = self._by_fd.pop((number, mode), None)
        if handle is not None:
            self._forget(handle)
            record(self.session, {"t": _now() - self.t0, "ev": "fdrm", "fd": number, "mode": mode})

    def fd_of(self, handle: Any) -> int | None:
        """The descriptor a reader or writer handle watches."""
        return self._fds.get(id(handle))

    def _forget(self, handle: Any) -> None:
        self._fds.pop(id(handle), None)

    def connected(self, transport: Any, server: Any) -> None:
        """A socket transport was made: accepted by ``server``, or connected out when None."""
        extra = transport._extra
        record(self.session, {"t": _now() - self.t0, "ev": "conn", "fd": transport._sock_fd,
                              "role": "client" if server is None else "server",
                              "host": address(extra.get("sockname")),
                              "peer": address(extra.get("peername"))})

    def lost(self, transport: Any, exc: BaseException | None, counts: tuple[int, int] | None) -> None:
        """The transport's connection is over (``connection_lost`` ran)."""
        event = {"t": _now() - self.t0, "ev": "close", "fd": transport._sock_fd,
                 "reason": "closed" if exc is None else
                 cut(f"{type(exc).__name__}: {safe_text(exc)}" if str(exc) else type(exc).__name__)}
        if counts is not None:
            event["in"], event["out"] = counts
        record(self.session, event)


def _descriptor_type(owner: Any, callback: Callable[..., Any]) -> str:
    """What a descriptor is, for the ``fdadd`` event: a transport's class, else what the
    callback is (a loop's own readers are its self-pipe and its listening sockets)."""
    if isinstance(owner, transports.BaseTransport):
        return type(owner).__qualname__
    if owner is not None:
        return f"{type(owner).__qualname__}.{getattr(callback, '__name__', '?')}"
    return getattr(callback, "__qualname__", type(callback).__qualname__)


def reader_callable(reads_for: Any, callback: Callable[..., Any]) -> Callable[..., Any]:
    """What a read call is named after: the protocol method a socket transport's read runs
    (``data_received``, or ``buffer_updated`` for a buffered protocol), else the callback."""
    protocol = getattr(reads_for, "_protocol", None)
    if protocol is None:
        return callback
    try:
        return protocol.data_received
    except AttributeError:
        return getattr(protocol, "buffer_updated", callback)
