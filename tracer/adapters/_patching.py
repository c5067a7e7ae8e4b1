"""Replacing attributes of a library for the length of a recording, and putting them back.

An adapter instruments a loop it does not own by replacing some of its attributes (methods
of one reactor object, methods of a class, a module's function).  :class:`Patches` remembers
each replacement so that ``restore()`` leaves the library exactly as it was: an attribute the
object did not have itself (a method found on its class) is deleted again rather than set.

The library may not be imported yet when tracing starts (``loopscope run`` installs adapters
before the application runs): :class:`PatchOnImport` runs a function on a module right after
the module is executed, before any importer sees it, so ``from twisted.internet.main import
installReactor`` already binds the wrapped function.
"""

from __future__ import annotations

import sys
from types import ModuleType
from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

_MISSING = object()


class Patches:
    """Attributes replaced on objects, classes and modules, put back by :meth:`restore`."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        """``owner.name = value``, remembering what ``owner`` itself had there."""
        own = getattr(owner, "__dict__", {})
        self._undo.append((owner, name, own.get(name, _MISSING)))
        setattr(owner, name, value)

    def restore(self) -> None:
        """Undo every :meth:`set`, last first."""
        while self._undo:
            owner, name, old = self._undo.pop()
            if old is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass  # the library removed it itself meanwhile
            else:
                setattr(owner, name, old)


class PatchOnImport:
    """Runs ``patches[name](module)`` right after module ``name`` is first executed.

    Installed first in :data:`sys.meta_path`; it finds nothing itself: it asks the finders
    after it for the module's spec and wraps the spec's loader.  Modules already imported are
    patched at once.  A finder and a loader need only their methods: importing importlib.abc
    for its base classes cost a traced child 15 ms of its start.
    """

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self._patches = patches

    def install(self) -> None:
        sys.meta_path.insert(0, self)
        for name, patch in self._patches.items():
            module = sys.modules.get(name)
            if module is not None:
                patch(module)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        patch = self._patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


class _PatchingLoader:
    """The module's own loader, then the patch; anything else is the own loader's.  Once the
    module is executed it names its own loader again (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader: Any, patch: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
