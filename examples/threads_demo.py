"""Seed program 4: blocking work in threads while the reactor keeps ticking.

* ``deferToThread(sleep, 0.5)`` runs a blocking function in the reactor's
  thread pool and gives back a Deferred; meanwhile a ``callLater`` ticker
  prints dots on the reactor thread, which proves the loop is not blocked.
* ``callInThread`` runs a CPU-heavy function in the pool; the pool thread
  hands its result back with ``callFromThread(d.callback, result)``, so the
  Deferred fires on the reactor thread (Deferreds are not thread-safe).
* ``callLater(1.2, reactor.stop)`` ends the program.

Run it:  python examples/threads_demo.py
"""

from __future__ import annotations

import threading
import time

from reactor import reactor
from reactor.defer import Deferred
from reactor.threads import deferToThread


def ticker() -> None:
    """Print a dot every 0.1 s on the reactor thread."""
    print(".", end="", flush=True)
    reactor.callLater(0.1, ticker)


def sleep(seconds: float) -> str:
    """A blocking function, made non-blocking by running it in a thread."""
    print(f"\nstart sleep {seconds}", flush=True)
    time.sleep(seconds)
    print(f"\nend sleep {seconds}", flush=True)
    return "OK"


def build_dicts(n: int, m: int) -> int:
    """CPU work: build ``n`` dicts of ``m`` keys; returns the last one's size."""
    keys = [f"a{i}" for i in range(m)]
    d: dict[str, int] = {}
    for _ in range(n):
        d = dict(zip(keys, range(m)))
    return len(d)


def compute_and_hand_back(d: Deferred, n: int, m: int) -> None:
    """Runs in a pool thread; fires ``d`` on the reactor thread."""
    result = build_dicts(n, m)
    reactor.callFromThread(d.callback, result)


def report(result: object, what: str) -> None:
    where = "reactor thread" if threading.current_thread() is threading.main_thread() else "pool thread"
    print(f"\n{what}: {result!r} (on the {where})", flush=True)


def main() -> None:
    deferToThread(sleep, 0.5).addBoth(report, "deferToThread(sleep) result")

    computed = Deferred()
    computed.addCallback(report, "callInThread(build_dicts) result")
    reactor.callInThread(compute_and_hand_back, computed, 20000, 100)

    reactor.callLater(0.1, ticker)
    reactor.callLater(1.2, reactor.stop)
    print("go!", flush=True)
    reactor.run()
    print("\nreactor stopped", flush=True)


if __name__ == "__main__":
    main()
