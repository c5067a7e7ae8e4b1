"""Which probe records a trace: the C extension when it is built, else the pure-Python one.

``LOOPSCOPE_PROBE=c`` or ``LOOPSCOPE_PROBE=python`` forces one.  Both modules provide the same
``Buffer`` and ``Probe`` (tracer/_native.c, tracer/pyprobe.py) and write the same lines.  The
choice is made each time a recording starts, from the environment at that moment; importing
this module imports neither.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: The environment variable that forces a probe.
ENV = "LOOPSCOPE_PROBE"
_CHOICES = ("c", "python")


class BackendError(RuntimeError):
    """The probe asked for cannot be used (its message is one sentence for the user)."""


def _forced() -> str | None:
    """``"c"``, ``"python"`` or None (not forced), from the environment."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    if value not in _CHOICES:
        raise BackendError(f"{ENV} must be 'c' or 'python', not {os.environ[ENV]!r}")
    return value


def _load() -> tuple[ModuleType, str]:
    """The probe module and its description."""
    forced = _forced()
    if forced != "python":
        try:
            native = importlib.import_module("tracer._native")
        except ImportError as e:
            if forced == "c":
                raise BackendError(f"{ENV}=c, but the C extension tracer._native is not built "
                                   f"({e}); reinstall with a C compiler or set {ENV}=python"
                                   ) from None
        else:
            return native, "C extension"
    from tracer import pyprobe
    reason = f"{ENV}=python" if forced == "python" else "the C extension is not built"
    return pyprobe, f"pure Python ({reason})"


def probe_module() -> ModuleType:
    """The module whose ``Buffer`` and ``Probe`` record (raises BackendError when
    ``LOOPSCOPE_PROBE`` asks for one that cannot be used)."""
    return _load()[0]


def probe_backend() -> str:
    """What records, in a few words: "C extension", "pure Python (the C extension is not
    built)" or "pure Python (LOOPSCOPE_PROBE=python)" (raises BackendError like
    :func:`probe_module`)."""
    return _load()[1]
