"""The bytes of open connections, sampled by the trace writer: a connection's bytes in and
out grow in the trace while it is open (``bytes`` events), not only in its ``close``.

When a connection opens, the runtime's hook registers a function that reads its two counts:
loopscope's reactor counts what its transports read and write; on asyncio and Twisted the
kernel has the counts (``TCP_INFO``), so nothing is counted per send or receive.  The writer
thread calls these functions with each flush, a bounded number at a time, and writes a
``bytes`` event for each connection whose counts changed since it last looked.  The loop
thread only registers and forgets.
"""

from __future__ import annotations

# The socket module's C half: the same constants (plain ints, equal to socket's enums), without
# the enum classes socket.py builds on import (about 4 ms of every traced child's start).
import _socket
import struct
import weakref
from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

#: What a registered function returns: ``(bytes in, bytes out)`` so far, or None when the
#: connection is gone or its counts cannot be read.
Counter = Callable[[], "tuple[int, int] | None"]

#: Connections read per writer flush (one every tracer.recorder.FLUSH_INTERVAL).  A read is a
#: getsockopt or two attribute reads, about a microsecond with the GIL held; with more
#: connections open than this, the others are read at the next flushes, so the writer never
#: holds the loop up for long.
PER_FLUSH = 512

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


def tcp_bytes(sock: Any, connected_out: bool) -> tuple[int, int] | None:
    """``(received, sent and acknowledged)`` over a TCP socket's life, from the kernel
    (``connected_out``: this side connected, rather than accepted); None for other sockets
    (Unix) and for a closed one."""
    tcp_info = getattr(_socket, "TCP_INFO", None)
    if tcp_info is None or sock is None or sock.family not in (_socket.AF_INET, _socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(_socket.IPPROTO_TCP, tcp_info, 256)
    except OSError:
        return None
    if len(info) < _TCP_INFO_LEN:
        return None
    acked, received = struct.unpack_from("<QQ", info, _TCP_INFO_BYTES)
    state = info[0]
    received -= state in _PEER_FIN_IN
    acked -= connected_out + (state in _OWN_FIN_ACKED)
    return max(received, 0), max(acked, 0)


def socket_counter(sock: Any, connected_out: bool) -> Counter:
    """A :data:`Counter` for a TCP socket, by the kernel's counts (it keeps no reference
    that would keep the socket open)."""
    ref = weakref.ref(sock)

    def counts() -> tuple[int, int] | None:
        alive = ref()
        return None if alive is None else tcp_bytes(alive, connected_out)
    return counts


def attribute_counter(transport: Any) -> Counter:
    """A :data:`Counter` for a transport that counts its own ``bytes_in`` and ``bytes_out``
    (loopscope's reactor), without keeping it alive."""
    ref = weakref.ref(transport)

    def counts() -> tuple[int, int] | None:
        alive = ref()
        if alive is None:
            return None
        received, sent = getattr(alive, "bytes_in", None), getattr(alive, "bytes_out", None)
        return None if received is None or sent is None else (received, sent)
    return counts


class ByteCounts:
    """The open connections' counters, by descriptor, and the counts last written."""

    def __init__(self) -> None:
        self._counters: dict[int, Counter] = {}
        self._written: dict[int, tuple[int, int]] = {}
        self._queue: list[int] = []

    def watch(self, fd: int, counter: Counter) -> None:
        """Connection ``fd`` opened (the loop thread)."""
        self._written.pop(fd, None)
        self._counters[fd] = counter

    def forget(self, fd: int) -> None:
        """Connection ``fd`` closed (the loop thread)."""
        self._counters.pop(fd, None)
        self._written.pop(fd, None)

    def watched(self) -> dict[int, Counter]:
        """The connections open now (the writer thread, before it drains the buffer)."""
        return dict(self._counters)

    def changed(self, t: int, watched: dict[int, Counter]) -> list[dict[str, Any]]:
        """``bytes`` events at time ``t`` for the next :data:`PER_FLUSH` connections whose
        counts moved (the writer thread), of those ``watched`` (as :meth:`watched` gave them
        before the drain, and still open): a connection opened after the drain has its ``conn``
        in the next batch, and its counts must not come before it.  A counter that fails is
        treated as one that has nothing to say: the writer must not fail for it."""
        if not self._queue:
            self._queue = list(self._counters)
        batch, self._queue = self._queue[:PER_FLUSH], self._queue[PER_FLUSH:]
        events = []
        for fd in batch:
            counter = self._counters.get(fd)
            if counter is None or watched.get(fd) is not counter:
                continue
            try:
                counts = counter()
            except Exception:  # noqa: BLE001 - the app's object; nothing may reach the writer
                counts = None
            if counts is not None and counts != self._written.get(fd):
                self._written[fd] = counts
                events.append({"t": t, "ev": "bytes", "fd": fd, "in": counts[0], "out": counts[1]})
        return events
