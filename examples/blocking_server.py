"""A server and client that block the loop in the ways loopscope must catch: a slow
dataReceived, a slow Deferred callback, a CPU-bound timer, an unhandled failure.

Run it under the tracer and read the report:

    loopscope run examples/blocking_server.py
    loopscope summary traces/blocking_server-*.local.jsonl

In about 2.5 seconds it, in order:
  * sleeps 250 ms in the server's dataReceived (a blocking handler),
  * parses for 150 ms in a Deferred callback fired by the client's dataReceived,
  * crunches numbers for 120 ms in a callLater timer,
  * sleeps 300 ms in deferToThread (work in a pool thread: it does not block the loop),
  * leaves a Deferred failure unhandled (its message carries markup and a terminal escape,
    which a viewer must show as text).
"""

import gc
import time

import tracer
from reactor import defer, protocol, reactor, threads

SLEEP_IN_HANDLER = 0.25
PARSE_TIME = 0.15
CRUNCH_TIME = 0.12
THREAD_SLEEP = 0.3


class SlowEcho(protocol.Protocol):
    """Echoes each request after sleeping: the loop can do nothing else meanwhile."""

    def dataReceived(self, data):
        time.sleep(SLEEP_IN_HANDLER)  # blocks the loop
        self.transport.write(data.upper())


class Requester(protocol.Protocol):
    """Sends one request; the reply goes through a Deferred whose callback parses slowly."""

    def connectionMade(self):
        self.transport.write(b"status please\n")

    def dataReceived(self, data):
        self.factory.reply.callback(data)
        self.transport.loseConnection()


def parse_reply(data):
    """A parser far too slow for the loop thread: 150 ms of CPU."""
    words = 0
    deadline = time.perf_counter() + PARSE_TIME
    while time.perf_counter() < deadline:
        words += len(data.split())  # blocks the loop
    return words


def crunch():
    """A CPU-bound timer: 120 ms of arithmetic on the loop thread."""
    total = 0
    deadline = time.perf_counter() + CRUNCH_TIME
    while time.perf_counter() < deadline:
        total += sum(i * i for i in range(100))  # blocks the loop
    return total


def tick():
    """A fast, well-behaved periodic timer (shows the loop is alive while the thread works)."""
    if reactor.running:
        reactor.callLater(0.05, tick)


def leave_failure_unhandled():
    """A Deferred that ends on a failure nobody handles (reported when collected)."""
    d = defer.Deferred()
    d.errback(ValueError("bad record [bold red]x[/] [@click=app.quit]quit[/] \x1b[2J"))
    del d
    gc.collect()
    tracer.mark("[bold red]unhandled failure left[/] \x1b[31m")


def main():
    factory = protocol.Factory()
    factory.protocol = SlowEcho
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")

    client = protocol.ClientFactory()
    client.protocol = Requester
    client.reply = defer.Deferred()
    client.reply.addCallback(parse_reply)
    reactor.callLater(0.1, reactor.connectTCP, "127.0.0.1", port.getHost().port, client)

    reactor.callLater(0.9, crunch)
    reactor.callLater(1.2, threads.deferToThread, time.sleep, THREAD_SLEEP)
    reactor.callLater(1.2, tick)
    reactor.callLater(1.8, leave_failure_unhandled)
    reactor.callLater(2.2, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
