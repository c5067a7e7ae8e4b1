"""loopscope's event loop: Twisted's reactor API on the standard library.

``from reactor import reactor, defer, protocol`` replaces
``from twisted.internet import reactor, defer, protocol``.  ``Reactor`` is the
class (tests make their own); ``reactor`` is the process-wide default instance.
"""

from reactor.base import DelayedCall, Reactor

reactor = Reactor()

__all__ = ["DelayedCall", "Reactor", "reactor"]
