"""An echo server and a client on Twisted's asyncio reactor, in one process: ROUNDS round
trips, then a deferToThread, then stop."""

import time

from twisted.internet import asyncioreactor

asyncioreactor.install()

from twisted.internet import protocol, reactor, threads  # noqa: E402 - after install()

ROUNDS = 20


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Pinger(protocol.Protocol):
    def connectionMade(self):
        self.left = ROUNDS
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.left -= 1
        if self.left:
            self.transport.write(b"ping")
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason):
        threads.deferToThread(time.sleep, 0.05).addCallback(lambda _: reactor.stop())


def start():
    server = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, server, interface="127.0.0.1").getHost().port
    protocol.ClientCreator(reactor, Pinger).connectTCP("127.0.0.1", port)


reactor.callWhenRunning(start)
reactor.run()
