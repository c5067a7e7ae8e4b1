"""Every way a read or a write of Twisted's reactor is named: a listening port accepting, a
connection's data (a plain protocol and one inside a policies wrapper), a client finishing
connecting, a pull producer writing, a protocol whose dataReceived raises, and hang-ups."""

from twisted.internet import protocol, reactor
from twisted.protocols import policies

DONE = {"clients": 0}
CLIENTS = 4


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        if data.startswith(b"raise"):
            raise ValueError("asked to")  # escapes to Twisted, which drops the connection
        self.transport.write(data)


class Chunks:
    """A pull producer: each resumeProducing writes one chunk, then it unregisters."""

    def __init__(self, transport):
        self.transport, self.left = transport, 3

    def resumeProducing(self):
        self.left -= 1
        self.transport.write(b"chunk")
        if not self.left:
            self.transport.unregisterProducer()

    def stopProducing(self):
        pass


class Client(protocol.Protocol):
    def __init__(self, first):
        self.first = first

    def connectionMade(self):
        if self.first == b"produce":
            self.transport.registerProducer(Chunks(self.transport), False)
        else:
            self.transport.write(self.first)

    def dataReceived(self, data):
        self.transport.loseConnection()

    def connectionLost(self, reason):
        DONE["clients"] += 1
        if DONE["clients"] == CLIENTS:
            reactor.stop()


def start():
    plain = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
    wrapped = reactor.listenTCP(0, policies.WrappingFactory(protocol.Factory.forProtocol(Echo)),
                                interface="127.0.0.1")
    for port, first in ((plain, b"hello"), (wrapped, b"wrapped"), (plain, b"raise"),
                        (plain, b"produce")):
        protocol.ClientCreator(reactor, Client, first).connectTCP("127.0.0.1", port.getHost().port)


reactor.callWhenRunning(start)
reactor.callLater(30, reactor.stop)  # a safety net: the test fails on the clients' count
reactor.run()
print("clients done:", DONE["clients"])
