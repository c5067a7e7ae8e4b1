"""Twisted's echo client example (docs: core/examples/echoclient.py), to the port given."""

import sys

from twisted.internet import protocol, reactor


class EchoClient(protocol.Protocol):
    """Once connected, send a message, then print the result."""

    def connectionMade(self):
        self.transport.write(b"hello, world!")

    def dataReceived(self, data):
        "As soon as any data is received, write it back."
        print("Server said:", data)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        print("connection lost")


class EchoFactory(protocol.ClientFactory):
    protocol = EchoClient

    def clientConnectionFailed(self, connector, reason):
        print("Connection failed - goodbye!")
        reactor.stop()

    def clientConnectionLost(self, connector, reason):
        print("Connection lost - goodbye!")
        reactor.stop()


def main():
    f = EchoFactory()
    reactor.connectTCP("127.0.0.1", int(sys.argv[1]), f)
    reactor.run()


if __name__ == "__main__":
    main()
