"""A busy loop that blocks rarely: the source of big traces (about 6 events per round).

    loopscope run -o big.jsonl examples/blocking_busy.py 170000    # ~1M events
    loopscope summary big.jsonl

Each round is a timer that fires a Deferred whose callback does a little work; every
50,000th round the callback takes 60 ms instead, so the summary has needles to find in the
haystack.  Used to measure summary time and memory, and the dashboard, on 1M-event traces.
"""

import sys
import time

from reactor import defer, reactor

SLOW_EVERY = 50_000


def handle(n):
    """Usually quick; now and then far too slow for the loop."""
    if n % SLOW_EVERY == 0:
        time.sleep(0.06)  # blocks the loop
    return n + 1


def round_(n, last):
    d = defer.Deferred()
    d.addCallback(handle)
    d.callback(n)
    if n == last:
        reactor.stop()
    elif n % 1000 == 0:
        reactor.callLater(0.001, round_, n + 1, last)  # let the loop idle a little
    else:
        reactor.callLater(0, round_, n + 1, last)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    reactor.callLater(0, round_, 1, rounds)
    reactor.run()


if __name__ == "__main__":
    main()
