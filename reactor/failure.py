"""Failure: an exception packaged so it can travel down a Deferred's chain.

A Python exception only lives while it is being raised.  Asynchronous code
needs to hand an error to a callback that runs later, on another stack, so
Twisted wraps it in a :class:`Failure` that keeps the exception, its class
and its traceback, and offers the checks an errback needs (``check``,
``trap``).  This is the same object with the same names, written to be cheap:
the traceback's frames are only extracted when someone formats them or the
Failure is cleaned to stop it keeping frames (and their locals) alive.

Deliberate differences from Twisted: a Failure is a plain object, not a
``BaseException`` subclass (nothing here raises a Failure itself; raise
``failure.value`` or call ``raiseException()``), and ``captureVars`` is
accepted but frames never carry local or global variables.
"""

from __future__ import annotations

import io
import linecache
import sys
from types import TracebackType
from typing import Any, NoReturn, TextIO

__all__ = ["Failure", "NoCurrentExceptionError"]

# A frame as Twisted describes it: (funcName, fileName, lineNumber,
# localsItems, globalsItems).  We never capture variables, so the last two
# are always empty tuples; the shape is kept so code reading Twisted's
# ``Failure.frames`` works unchanged.
Frame = tuple[str, str, int, tuple, tuple]


class NoCurrentExceptionError(Exception):
    """``Failure()`` was called with no argument outside an ``except`` block."""


def qual(cls: type) -> str:
    """Fully qualified dotted name of a class, as ``check`` compares it
    (``builtins.ValueError``, ``reactor.defer.CancelledError``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def safe_str(obj: object) -> str:
    """``str(obj)`` that never raises: a broken ``__str__`` in user code must
    not hide the error being reported."""
    try:
        return str(obj)
    except BaseException:  # noqa: BLE001 - formatting must not fail
        return f"<{type(obj).__name__} instance with broken __str__>"


def _frames_of(tb: TracebackType | None) -> list[Frame]:
    frames: list[Frame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_name, code.co_filename, tb.tb_lineno, (), ()))
        tb = tb.tb_next
    return frames


class Failure:
    """An exception, its class and its traceback, kept for later.

    ``Failure()`` inside an ``except`` block captures the exception being
    handled; ``Failure(exc)`` wraps an exception instance (using its
    ``__traceback__`` if it has one); ``Failure(other_failure)`` copies it.
    """

    count = 0  # class-wide serial number, as Twisted numbers its Failures

    def __init__(self, exc_value: BaseException | Failure | None = None,
                 exc_type: type | None = None,
                 exc_tb: TracebackType | None = None,
                 captureVars: bool = False) -> None:
        # captureVars is accepted for Twisted compatibility; variables are
        # never captured (they would keep whole object graphs alive).
        Failure.count += 1
        self.count = Failure.count
        if exc_value is None:
            exc_type, exc_value, exc_tb = sys.exc_info()
            if exc_type is None:
                raise NoCurrentExceptionError()
        elif isinstance(exc_value, Failure):
            self.__dict__.update(exc_value.__dict__)
            return
        else:
            if exc_type is None:
                exc_type = type(exc_value)
            if exc_tb is None:
                exc_tb = getattr(exc_value, "__traceback__", None)
        self.type: type = exc_type
        self.value: BaseException = exc_value
        self.tb: TracebackType | None = exc_tb
        self._frames: list[Frame] | None = None

    # -- what happened ---------------------------------------------------
    @property
    def frames(self) -> list[Frame]:
        """Traceback frames, outermost first, extracted on first use."""
        if self._frames is None:
            self._frames = _frames_of(self.tb)
        return self._frames

    @property
    def stack(self) -> list[Frame]:
        """Always empty, as in Twisted since 24.10 (the frames above the
        handler were never worth their cost); kept so old code still reads."""
        return []

    @property
    def parents(self) -> list[str]:
        """Dotted names of the exception's class and its bases."""
        return [qual(c) for c in self.type.__mro__] if isinstance(self.type, type) else []

    def check(self, *errorTypes: type | str) -> type | str | None:
        """Return the first of ``errorTypes`` (classes or dotted names such
        as ``"builtins.ValueError"``) that this failure is an instance of,
        else ``None``."""
        for error in errorTypes:
            if isinstance(error, str):
                if error in self.parents:
                    return error
            elif isinstance(self.type, type) and issubclass(self.type, error):
                return error
        return None

    def trap(self, *errorTypes: type | str) -> type | str:
        """Like :meth:`check`, but re-raise the original exception when it
        does not match, so an errback passes on what it cannot handle."""
        error = self.check(*errorTypes)
        if error is None:
            self.raiseException()
        return error

    def raiseException(self) -> NoReturn:
        """Raise the original exception with its original traceback."""
        raise self.value.with_traceback(self.tb)

    def throwExceptionIntoGenerator(self, g: Any) -> Any:
        """Throw the original exception into generator ``g``; returns what
        it yields next (Twisted's inlineCallbacks helper)."""
        return g.throw(self.value.with_traceback(self.tb))

    def getErrorMessage(self) -> str:
        """The exception's message (``str(value)``), never raising."""
        if isinstance(self.value, Failure):
            return self.value.getErrorMessage()
        return safe_str(self.value)

    def cleanFailure(self) -> None:
        """Drop the traceback (and with it every frame's locals), keeping the
        extracted frames so the Failure can still be printed.  A Deferred
        does this to a Failure left at the end of its chain."""
        _ = self.frames
        self.tb = None
        if getattr(self.value, "__traceback__", None) is not None:
            self.value.__traceback__ = None

    # -- formatting ------------------------------------------------------
    def printTraceback(self, file: TextIO | None = None, elideFrameworkCode: int = 0,
                       detail: str = "default") -> None:
        """Write the traceback as Python would (``detail`` is ``"default"``,
        ``"brief"`` — one line per frame — or ``"verbose"``)."""
        if file is None:
            file = sys.stderr
        w = file.write
        frames = self.frames
        if detail == "brief":
            heading = "Traceback" if frames else "Traceback (failure with no frames)"
            w(f"{heading}: {safe_str(self.type)}: {safe_str(self.value)}\n")
            for func, filename, line, _, _ in frames:
                w(f"{filename}:{line}:{func}\n")
            return
        if detail == "verbose":
            w(f"*--- Failure #{self.count} ---\n")
        w("Traceback (most recent call last):\n")
        if not frames:
            w("Failure: ")
        for func, filename, line, _, _ in frames:
            w(f'  File "{filename}", line {line}, in {func}\n')
            source = linecache.getline(filename, line).strip()
            if source:
                w(f"    {source}\n")
        type_name = qual(self.type) if isinstance(self.type, type) else safe_str(self.type)
        w(f"{type_name}: {safe_str(self.value)}\n")
        if detail == "verbose":
            w(f"*--- End of Failure #{self.count} ---\n")

    def getTraceback(self, elideFrameworkCode: int = 0, detail: str = "default") -> str:
        """:meth:`printTraceback` into a string."""
        out = io.StringIO()
        self.printTraceback(out, elideFrameworkCode, detail)
        return out.getvalue()

    def getBriefTraceback(self) -> str:
        """One line per frame; used by ``str(failure)``."""
        return self.getTraceback(detail="brief")

    def __repr__(self) -> str:
        type_name = qual(self.type) if isinstance(self.type, type) else safe_str(self.type)
        return f"<{qual(type(self))} {type_name}: {self.getErrorMessage()}>"

    def __str__(self) -> str:
        return f"[Failure instance: {self.getBriefTraceback()}]"

