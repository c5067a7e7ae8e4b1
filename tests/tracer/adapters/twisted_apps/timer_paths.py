"""Every way a timed call reaches Twisted's reactor: a function with arguments and keywords, a
lambda, a bound method, a Deferred's callback, a LoopingCall, a partial, a builtin, a call that
raises, and calls cancelled, reset and delayed before they run; callLater refusing a negative
delay."""

from functools import partial

from twisted.internet import defer, reactor, task

RAN = []


def with_arguments(a, b, *, key):
    RAN.append(("with_arguments", a, b, key))


def plain():
    RAN.append("plain")


def never():
    RAN.append("never")


def boom():
    raise ValueError("a timer that raises")  # Twisted logs it and goes on


class Counter:
    def __init__(self):
        self.ticks = 0

    def tick(self):
        self.ticks += 1


def loop_body(counter):
    counter.tick()
    if counter.ticks == 3:
        looping.stop()


def reset_ran():
    RAN.append("reset")


def delayed_ran():
    RAN.append("delayed")


def finish():
    print("ran:", sorted(map(str, RAN)))
    print("counter:", counter.ticks)
    reactor.stop()


counter = Counter()
looping = task.LoopingCall(loop_body, counter)


def start():
    reactor.callLater(0, with_arguments, 1, 2, key=3)
    reactor.callLater(0, lambda: RAN.append("lambda"))
    reactor.callLater(0, counter.tick)
    d = defer.Deferred()
    d.addCallback(lambda value: RAN.append(("deferred", value)))
    reactor.callLater(0, d.callback, "fired")
    reactor.callLater(0, partial(RAN.append, "partial"))
    reactor.callLater(0, print, "builtin ran")
    reactor.callLater(0, boom)
    reactor.callLater(10, never).cancel()
    reactor.callLater(10, reset_ran).reset(0.02)
    reactor.callLater(0.01, delayed_ran).delay(0.01)
    try:
        reactor.callLater(-1, never)
    except AssertionError:
        RAN.append("refused")
    looping.start(0.01)
    reactor.callLater(0.2, finish)


reactor.callWhenRunning(start)
reactor.run()
