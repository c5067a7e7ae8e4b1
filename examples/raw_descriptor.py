"""Seed program 1: a raw file descriptor watched by the reactor.

``MySocket`` implements IReadDescriptor by hand (fileno / doRead /
connectionLost) on a non-blocking socket: the reactor calls ``doRead`` when
bytes are waiting, ``doRead`` drains the socket until it would block, and
returns ``CONNECTION_DONE`` at end of file, which makes the reactor remove it
and call ``connectionLost`` (where we stop the reactor).

The example starts its own tiny server (a thread on 127.0.0.1 that sends a
poem and closes), so it runs anywhere:  python examples/raw_descriptor.py
"""

from __future__ import annotations

import socket
import threading

from reactor import main, reactor
from reactor.failure import Failure
from reactor.interfaces import IReadDescriptor

POEM = b"""Tyger Tyger, burning bright,
In the forests of the night;
What immortal hand or eye,
Could frame thy fearful symmetry?
"""


def serve_poem_once(listener: socket.socket) -> None:
    """Accept one client, send it the poem in small pieces, then close."""
    conn, _ = listener.accept()
    with conn:
        for start in range(0, len(POEM), 20):
            conn.sendall(POEM[start:start + 20])
    listener.close()


class MySocket(IReadDescriptor):
    """Reads everything a server sends, through the reactor, without a Protocol."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.connect(address)
        self.sock.setblocking(False)
        self.received = bytearray()
        reactor.addReader(self)  # tell the reactor to watch this socket for reading

    def fileno(self) -> int:
        try:
            return self.sock.fileno()
        except OSError:
            return -1

    def doRead(self) -> object:
        """Read as much as is waiting; report end of file as CONNECTION_DONE."""
        chunk = bytearray()
        while True:
            try:
                data = self.sock.recv(1024)
            except BlockingIOError:
                break
            except OSError:
                return main.CONNECTION_LOST
            if not data:
                if chunk:
                    break  # print what we have; EOF comes back on the next doRead
                return main.CONNECTION_DONE
            chunk += data
        self.received += chunk
        print(chunk.decode(), end="", flush=True)
        return None

    def connectionLost(self, reason: Failure) -> None:
        self.sock.close()
        reactor.removeReader(self)
        print(f"[connection lost: {reason.getErrorMessage()}; {len(self.received)} bytes]")
        reactor.stop()

    def logPrefix(self) -> str:
        return f"MySocket{self.address}"


def main_() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = threading.Thread(target=serve_poem_once, args=(listener,), daemon=True)
    server.start()
    MySocket(listener.getsockname())
    reactor.run()
    server.join()


if __name__ == "__main__":
    main_()
