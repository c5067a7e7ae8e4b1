"""An echo server: every byte a client sends comes straight back.

    python examples/echo_server.py [PORT]      # default 8000; 0 picks a free port
    nc 127.0.0.1 8000                          # then type; Ctrl-C the server to stop

Listens on 127.0.0.1 only.  The smallest useful server on this reactor, and a
handy target for ``loopscope run examples/echo_server.py``.
"""

from __future__ import annotations

import sys
from typing import Any

from reactor import reactor
from reactor.error import CannotListenError
from reactor.protocol import Factory, Protocol


class Echo(Protocol):
    def connectionMade(self) -> None:
        print(f"connection from {self.transport.getPeer()}", flush=True)

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def connectionLost(self, reason: Any) -> None:
        print(f"{self.transport.getPeer()} left: {reason.getErrorMessage()}", flush=True)


def parse_port(argv: list[str]) -> int:
    """The port from the command line; ValueError with a one-line reason."""
    if len(argv) > 1:
        raise ValueError("usage: python examples/echo_server.py [PORT]")
    if not argv:
        return 8000
    try:
        port = int(argv[0])
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"PORT must be a number from 0 to 65535, not {argv[0]!r}")
    return port


def main(argv: list[str]) -> int:
    try:
        port = parse_port(argv)
        listening = reactor.listenTCP(port, Factory.forProtocol(Echo), interface="127.0.0.1")
    except (ValueError, CannotListenError) as exc:
        print(f"echo_server: {exc}", file=sys.stderr)
        return 2
    print(f"echo server listening on 127.0.0.1:{listening.getHost().port}", flush=True)
    reactor.run()
    print("echo server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
