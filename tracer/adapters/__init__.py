"""Adapters: instrument event loops other than loopscope's own reactor (asyncio's standard
loop, the installed Twisted reactor) into the same trace format.

``loopscope run`` calls :func:`install` right after the tracer starts and :func:`uninstall`
before it stops; importing loopscope (or this package) patches nothing, so a program that is
not being traced pays nothing.  Each adapter is a module here, named in :data:`ADAPTERS`,
with ``install(session: tracer.session.Tracer) -> None`` and ``uninstall() -> None``.  An
adapter announces the loop it saw with a ``runtime`` event (docs/trace-format.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracer.session import Tracer

#: Adapter modules under tracer.adapters, installed in this order.
ADAPTERS: tuple[str, ...] = ("asyncio_loop",)


def install(session: "Tracer") -> None:
    """Install every adapter for the recording ``session``."""
    for name in ADAPTERS:
        importlib.import_module(f"tracer.adapters.{name}").install(session)


def uninstall() -> None:
    """Undo :func:`install` (the adapters that were installed), last first."""
    for name in reversed(ADAPTERS):
        importlib.import_module(f"tracer.adapters.{name}").uninstall()
