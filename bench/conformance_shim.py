"""What a rewritten copy of a Twisted test module imports instead of Twisted.

``bench/conformance.py`` replaces ``from twisted.internet.defer import race``
by ``race = _lsconf.attr("reactor.defer", "race")``.  A name loopscope does
not have must not stop the whole module from importing (one missing helper
would hide every other test in it), so it becomes a *placeholder*: a class
that can still be subclassed or named in a decorator list, and that raises
:class:`MissingAPI` as soon as a test really uses it.  The runner counts a
test that dies on MissingAPI as missing-api, not as failed.
"""

from __future__ import annotations

import functools
import importlib
import types
from typing import Any


class MissingAPI(AttributeError):
    """A test used a name that loopscope does not offer."""

    def __init__(self, qualname: str) -> None:
        super().__init__(f"loopscope has no {qualname}")
        self.qualname = qualname


class _MissingMeta(type):
    """Metaclass of placeholders: calling one or reading its attributes raises."""

    def __call__(cls, *args: Any, **kw: Any) -> Any:
        raise MissingAPI(cls._lsconf_missing)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise MissingAPI(f"{cls._lsconf_missing}.{name}")


def placeholder(qualname: str) -> type:
    """A stand-in for the missing ``qualname`` (e.g. ``reactor.defer.race``)."""
    return _MissingMeta(qualname.rsplit(".", 1)[-1], (), {"_lsconf_missing": qualname})


class _MissingModule(types.ModuleType):
    """A loopscope module that does not exist: every name in it is missing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return placeholder(f"{self.__name__}.{name}")


def module(dotted: str) -> types.ModuleType:
    """loopscope's module ``dotted``, or a module of placeholders if it has none.

    A module that exists gives a placeholder for each name it lacks (a
    module-level ``__getattr__``), so a table of names at a test module's top
    level does not stop the module importing.  It is the real module, so a
    test's ``self.patch(module, name, ...)`` still patches loopscope."""
    try:
        mod = importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name is None or not dotted.startswith(exc.name):
            raise  # the module exists but itself failed to import
        return _MissingModule(dotted)
    if "__getattr__" not in vars(mod):
        mod.__getattr__ = functools.partial(_missing_in, dotted)
    return mod


def _missing_in(dotted: str, name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return placeholder(f"{dotted}.{name}")


def attr(dotted: str, name: str) -> Any:
    """``from dotted import name`` for a loopscope module, or a placeholder."""
    mod = module(dotted)
    try:
        return getattr(mod, name)
    except AttributeError:
        return placeholder(f"{dotted}.{name}")


def the_reactor() -> Any:
    """loopscope's default reactor (installed as Twisted's global one by the runner)."""
    return importlib.import_module("reactor").reactor
