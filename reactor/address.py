"""Addresses of connection ends, named and shaped as ``twisted.internet.address``.

A transport's ``getHost()`` / ``getPeer()`` and a factory's
``buildProtocol(addr)`` give these; they compare by value, so
``IPv4Address("TCP", "127.0.0.1", 8080)`` equals the address of a port
listening there.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IPv4Address", "IPv6Address", "UNIXAddress"]


@dataclass(frozen=True)
class IPv4Address:
    """An IPv4 endpoint as Twisted names it: ``IPv4Address('TCP', host, port)``."""

    type: str
    host: str
    port: int


@dataclass(frozen=True)
class IPv6Address:
    """An IPv6 endpoint: ``IPv6Address('TCP', host, port)``; a link-local
    host carries its scope (``fe80::1%eth0``)."""

    type: str
    host: str
    port: int
    flowInfo: int = 0
    scopeID: str | int = 0


@dataclass(frozen=True)
class UNIXAddress:
    """A Unix socket address as Twisted names it; ``name`` is None for an
    unnamed (client) socket."""

    name: str | bytes | None

    def __repr__(self) -> str:
        return f"UNIXAddress({self.name!r})"
