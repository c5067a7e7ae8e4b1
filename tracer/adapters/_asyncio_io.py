"""asyncio's descriptors and connections: readers and writers (``fdadd``/``fdrm``), the
callbacks they run (``read``/``write`` calls named after the protocol method), and socket
transports (``conn``/``close``, with the peer and the bytes).

A reader or writer is a plain ``Handle`` the selector keeps and the loop runs each time the
descriptor is ready.  When it is registered its class becomes one of the subclasses below
(they add no slot, so the object stays as it is): the loop then tells a read from a write or
any other handle by its class, which costs less than looking it up.  The bytes of a TCP
connection come from the kernel (tracer.bytecounts: sampled while it is open, and read just
before the socket closes) rather than from counting each send and receive: the count costs
nothing while the connection runs.  ``out`` is the bytes the peer acknowledged; for other
sockets (Unix) the byte counts are absent.
"""

from __future__ import annotations

import time
from asyncio import events, selector_events, transports
from selectors import _fileobj_to_fd  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from tracer.adapters._loop_calls import record
from tracer.bytecounts import socket_counter
from tracer.recorder import cut, safe_text

if TYPE_CHECKING:
    from tracer.session import Tracer

_now = time.monotonic_ns


def address(addr: Any) -> str | None:
    """``host:port`` of an IP address, a Unix socket's path (``unix`` when unnamed)."""
    if addr is None:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return cut(f"{addr[0]}:{addr[1]}")
    if isinstance(addr, str):
        return cut(addr) if addr else "unix"
    return safe_text(addr)


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
        #: The probe's fd table: a read/write call's source is its Handle.
        self._probe = session.probe.native
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
        self._probe.watch_fd(handle, number)
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
        return self._probe.fd_of(handle)

    def _forget(self, handle: Any) -> None:
        self._probe.unwatch_fd(handle)

    def connected(self, transport: Any, server: Any) -> None:
        """A socket transport was made: accepted by ``server``, or connected out when None."""
        extra = transport._extra
        fd = transport._sock_fd
        record(self.session, {"t": _now() - self.t0, "ev": "conn", "fd": fd,
                              "role": "client" if server is None else "server",
                              "host": address(extra.get("sockname")),
                              "peer": address(extra.get("peername"))})
        self.session.recorder.byte_counts.watch(fd, socket_counter(transport._sock, server is None))

    def lost(self, transport: Any, exc: BaseException | None, counts: tuple[int, int] | None) -> None:
        """The transport's connection is over (``connection_lost`` ran)."""
        self.session.recorder.byte_counts.forget(transport._sock_fd)
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
