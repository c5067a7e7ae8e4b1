"""Deferred callbacks down every path the Twisted adapter times differently: a plain result,
extra arguments, a callback that raises, one that returns a Failure, an errback that
recovers, addBoth, a callback returning a Deferred not fired yet (a chain), one returning a
fired Deferred that Twisted made (``succeed``), a Deferred fired by a timer, a subclass fired
with a Failure and then fired again, and a failure nobody handles.  It prints what the program saw, which tracing must not change.
"""

import gc
import sys

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure

seen = []


def double(x):
    return 2 * x


def scaled(x, factor, offset=0):
    return x * factor + offset


def explode(x):
    raise ValueError(f"exploded on {x}")  # raised in a callback


def as_failure(x):
    return Failure(KeyError(x))


def recover(failure):
    raised_in = failure.frames[-1][0] if failure.frames else None
    seen.append(("recovered", failure.type.__name__, failure.getErrorMessage(), raised_in))
    return "recovered"


def both(result):
    seen.append(("both", result if not isinstance(result, Failure) else result.type.__name__))
    return result


def later(x):
    inner = defer.Deferred()
    reactor.callLater(0.01, inner.callback, x + 1)
    return inner  # the outer Deferred waits for it


class Tagged(defer.Deferred):
    def __init__(self):
        super().__init__()  # a subclass's Deferred
        self.tag = "tagged"


def fired_twice():
    t = Tagged()
    t.addErrback(recover)
    t.callback(Failure(KeyError("as a result")))  # callback() given a Failure
    try:
        t.callback("again")
    except defer.AlreadyCalledError:
        seen.append("already called")


def lost():
    d = defer.Deferred()  # left failing
    d.addCallback(explode)
    d.callback("nobody-handles-this")  # its failure is never handled
    del d
    gc.collect()


def main():
    d = defer.Deferred()  # down every path
    d.addCallback(double).addCallback(scaled, 3, offset=1).addCallback(explode)
    d.addCallbacks(seen.append, recover).addCallback(as_failure).addErrback(recover)
    d.addBoth(both).addCallback(defer.succeed).addCallback(seen.append)
    d.callback(5)
    fired_twice()

    chained = defer.Deferred()
    chained.addCallback(later).addCallback(double).addCallback(seen.append)
    reactor.callLater(0, chained.callback, 20)
    lost()
    reactor.callLater(0.1, finish)


def finish():
    for item in seen:
        print("seen", item)
    reactor.stop()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.callWhenRunning(main)
    reactor.run()
