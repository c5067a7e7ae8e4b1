"""A protocol whose dataReceived raises: Twisted logs the error and drops the connection.
With the argument ``asyncio``, on the asyncio reactor."""

import sys

if sys.argv[1:] == ["asyncio"]:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()

from twisted.internet import protocol, reactor


class Bad(protocol.Protocol):
    def dataReceived(self, data):
        raise ValueError("cannot parse " + data.decode())  # escapes to Twisted


class Sender(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"this")

    def connectionLost(self, reason):
        reactor.stop()


def start():
    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Bad), interface="127.0.0.1")
    protocol.ClientCreator(reactor, Sender).connectTCP("127.0.0.1", port.getHost().port)


reactor.callWhenRunning(start)
reactor.run()
