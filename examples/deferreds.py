"""Seed program 3: a Deferred's two chains, and why it fires only once.

A Deferred carries a callback chain for results and an errback chain for
errors.  ``addCallbacks(ok, err)`` adds one pair, ``addBoth(common)`` a
function that runs either way.  A result goes ok -> common, an error goes
err -> common.  Firing the same Deferred a second time is refused with
AlreadyCalledError: a Deferred stands for one result.

The reactor fires the Deferreds later, as a network reply would.

Run it:  python examples/deferreds.py
"""

from __future__ import annotations

from typing import Any

from reactor import reactor
from reactor.defer import AlreadyCalledError, Deferred
from reactor.failure import Failure


def ok_callback(result: Any) -> Any:
    print(f"ok_callback: got {result!r}")
    return result.upper()


def err_callback(failure: Failure) -> str:
    print(f"err_callback: got {failure.type.__name__}: {failure.getErrorMessage()}")
    return "fallback text"  # handled: the chain goes back to the result path


def common_callback(result: Any) -> None:
    print(f"common_callback: got {result!r}")


def request() -> Deferred:
    """A Deferred for a reply that has not arrived yet."""
    d = Deferred()
    d.addCallbacks(ok_callback, err_callback)
    d.addBoth(common_callback)
    return d


def fire_again(d: Deferred) -> None:
    try:
        d.callback("a second reply")
    except AlreadyCalledError:
        print("second callback on the same Deferred: AlreadyCalledError")


def main() -> None:
    answered = request()
    refused = request()
    reactor.callLater(0.05, answered.callback, "the reply")
    reactor.callLater(0.10, refused.errback, ConnectionRefusedError("server said no"))
    reactor.callLater(0.15, fire_again, answered)
    reactor.callLater(0.20, reactor.stop)
    reactor.run()
    print("reactor stopped")


if __name__ == "__main__":
    main()
