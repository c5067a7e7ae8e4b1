"""Twisted's echo server example (docs: core/examples/echoserv.py), on the port given."""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data):
        """
        As soon as any data is received, write it back.
        """
        self.transport.write(data)


def main():
    f = Factory()
    f.protocol = Echo
    reactor.listenTCP(int(sys.argv[1]), f, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
