"""Thread work, a LoopingCall and a Deferred that fails with nobody handling it.

Twisted's log goes to stdout, where its own report of the unhandled error must still appear.
"""

import sys
import time

from twisted.internet import defer, reactor, task, threads
from twisted.logger import globalLogBeginner, textFileLogObserver


def blocking_io(seconds):
    time.sleep(seconds)  # in a pool thread: the loop goes on
    return seconds


def heartbeat():
    pass


def lookup(key):
    d = defer.Deferred()
    reactor.callLater(0.05, d.errback, KeyError(key))
    return d


def main():
    task.LoopingCall(heartbeat).start(0.02)
    threads.deferToThread(blocking_io, 0.3).addCallback(print)
    reactor.callInThread(blocking_io, 0.1)
    lookup("nobody-handles-this")  # its failure is never handled
    reactor.callLater(0.6, reactor.stop)


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.callWhenRunning(main)
    reactor.run()
