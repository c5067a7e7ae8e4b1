"""The constants Twisted code reaches through ``twisted.internet.main``.

The seed's raw descriptor returns ``main.CONNECTION_DONE`` / ``main.CONNECTION_LOST``
from ``doRead``; they are the same objects as in :mod:`reactor.error`.
"""

from reactor.error import CONNECTION_DONE, CONNECTION_LOST

__all__ = ["CONNECTION_DONE", "CONNECTION_LOST"]
