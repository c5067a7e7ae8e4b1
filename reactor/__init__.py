"""loopscope's event loop: Twisted's reactor API on the standard library.

``from reactor import reactor, defer, protocol`` replaces
``from twisted.internet import reactor, defer, protocol``.  ``Reactor`` is the
class (tests make their own); ``reactor`` is the process-wide default instance.

The default instance is made when it is first asked for, not when the package is imported:
the tracer imports ``reactor._instrument`` in every traced process, and an asyncio or Twisted
program, or a traced child that never runs this reactor, should not get its selector and
waker (three descriptors) nor pay for importing its code.
"""

from __future__ import annotations

import threading

# As typing.TYPE_CHECKING (type checkers take it as True), without importing typing: the tracer
# imports this package at the start of every traced process.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from reactor.base import DelayedCall, Reactor

    reactor: Reactor

__all__ = ["DelayedCall", "Reactor", "reactor"]

_making = threading.Lock()


def __getattr__(name: str) -> Any:
    if name in ("DelayedCall", "Reactor"):
        from reactor import base

        return getattr(base, name)
    if name == "reactor":
        from reactor.base import Reactor

        with _making:  # two threads asking first get the same one
            made = globals().get("reactor")
            if made is None:
                made = globals()["reactor"] = Reactor()
        return made
    raise AttributeError(f"module 'reactor' has no attribute {name!r}")
