"""Adapters: instrument event loops other than loopscope's own reactor (asyncio's standard
loop, the installed Twisted reactor) into the same trace format.

``loopscope run`` calls :func:`install` right after the tracer starts and :func:`uninstall`
before it stops; importing loopscope (or this package) patches nothing, so a program that is
not being traced pays nothing.  Each adapter is a module here, named in :data:`ADAPTERS`,
with ``install(session: tracer.session.Tracer) -> None`` and ``uninstall() -> None``.  An
adapter announces the loop it saw with a ``runtime`` event (docs/trace-format.md).  An adapter
that cannot trace its runtime here (an asyncio it does not know) raises :class:`AdapterError`
from ``install`` having patched nothing: the run goes on with a warning on stderr, untraced
by that adapter only.

One loop, one adapter.  A loop can run under another: Twisted's asyncio reactor runs on an
asyncio loop.  The adapter of the outer runtime claims the loop under it (:func:`claim`: the
Twisted adapter, when it instruments an ``AsyncioSelectorReactor``), and an adapter that
instruments asyncio loops leaves a loop alone while :func:`claimed_by` names another adapter.
It checks when the loop starts running (a reactor claims its loop after creating it, before
running it), so that no call is counted twice.
"""

from __future__ import annotations

import functools
import importlib
import sys
import weakref
from collections.abc import Callable
from types import ModuleType

from tracer.output import warn

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

    from tracer.session import Tracer

class AdapterError(Exception):
    """An adapter cannot trace its runtime in this process (the message says why)."""


#: Adapter modules under tracer.adapters, installed in this order.
ADAPTERS: tuple[str, ...] = ("twisted_reactor", "asyncio_loop")
#: Adapters installed only once the program imports what they trace: importing asyncio and the
#: adapter was about 60 ms of the start of every traced Python child that never uses it.
#: (The Twisted adapter watches imports itself: it patches modules as they load.)
ON_IMPORT: dict[str, str] = {"asyncio_loop": "asyncio"}

#: The recording the adapters still waiting for their library's import are for, and the
#: import hook that installs them (None when none waits).
_waiting_for: Tracer | None = None
_waiting: Any = None

#: Loops instrumented by the adapter of the runtime running on them: loop -> adapter name.
_claims: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def claim(loop: Any, adapter: str) -> None:
    """Say that ``adapter`` instruments ``loop`` (other adapters must leave it alone)."""
    _claims[loop] = adapter


def release(loop: Any) -> None:
    """Undo :func:`claim` (the adapter uninstalled)."""
    _claims.pop(loop, None)


def claimed_by(loop: Any) -> str | None:
    """The adapter that claimed ``loop``, if any."""
    return _claims.get(loop)


def install(session: Tracer) -> None:
    """Install every adapter for the recording ``session`` (those of :data:`ON_IMPORT` when
    the program imports their library, if it has not yet)."""
    global _waiting, _waiting_for
    later: dict[str, Callable[[ModuleType], None]] = {}
    for name in ADAPTERS:
        library = ON_IMPORT.get(name)
        if library is not None and library not in sys.modules:
            later[library] = functools.partial(_install_on_import, name)
        else:
            _install(name, session)
    if later:
        from tracer.adapters._patching import PatchOnImport

        _waiting_for, _waiting = session, PatchOnImport(later)
        _waiting.install()


def _install(name: str, session: Tracer) -> None:
    try:
        importlib.import_module(f"tracer.adapters.{name}").install(session)
    except AdapterError as e:
        warn(str(e))


def _install_on_import(name: str, _library: ModuleType) -> None:
    if _waiting_for is not None:
        _install(name, _waiting_for)


def uninstall() -> None:
    """Undo :func:`install` (the adapters that were installed), last first."""
    global _waiting, _waiting_for
    if _waiting is not None:
        _waiting.uninstall()
        _waiting = _waiting_for = None
    for name in reversed(ADAPTERS):
        module = sys.modules.get(f"tracer.adapters.{name}")
        if module is not None:
            module.uninstall()


def follow_fork(session: Tracer) -> None:
    """In a forked child: the adapters installed for the parent's recording record into the
    child's own, ``session``, from now on (an adapter with a ``follow_fork`` of its own)."""
    global _waiting_for
    if _waiting is not None:
        _waiting_for = session
    for name in ADAPTERS:
        follow = getattr(sys.modules.get(f"tracer.adapters.{name}"), "follow_fork", None)
        if follow is not None:
            follow(session)
