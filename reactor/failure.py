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

__all__ = ["Failure", "NoCurrentExceptionError", "format_frames"]

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


# The attribute a cleaned Failure leaves on its exception: the frames its
# traceback had.  When the exception is raised again (``await``, ``yield`` in
# inlineCallbacks, a ``trap`` that does not match) the new traceback starts at
# the re-raise, and a Failure made from it puts these frames after its own, so
# the place the error was first raised is never lost.
_EARLIER_FRAMES = "_loopscope_failure_frames"

# Where Failure's own re-raise happens: a frame of these is the seam between
# the new traceback and the earlier frames, and is left out, as Twisted does.
_RERAISE_FUNCTIONS = {"raiseException", "throwExceptionIntoGenerator"}


def format_frames(frames: list[Frame], write: Any, detail: str = "default") -> None:
    """Write ``frames`` with ``write`` in one of Twisted's formats:
    ``"default"`` (as Python does), ``"brief"`` (one line each), or
    ``"verbose"`` / ``"verbose-vars-not-captured"`` (one line each, with the
    note that variables were not captured: they never are here)."""
    if detail not in ("default", "brief", "verbose", "verbose-vars-not-captured"):
        raise ValueError("Detail must be default, brief, verbose, or "
                         f"verbose-vars-not-captured. (not {detail!r})")
    if detail == "brief":
        for func, filename, line, _, _ in frames:
            write(f"{filename}:{line}:{func}\n")
    elif detail == "default":
        for func, filename, line, _, _ in frames:
            write(f'  File "{filename}", line {line}, in {func}\n')
            write(f"    {linecache.getline(filename, line).strip()}\n")
    else:
        for func, filename, line, _, _ in frames:
            write(f"{filename}:{line}: {func}(...)\n")
        write(" [Capture of Locals and Globals disabled (use captureVars=True)]\n")


class Failure:
    """An exception, its class and its traceback, kept for later.

    ``Failure()`` inside an ``except`` block captures the exception being
    handled; ``Failure(exc)`` wraps an exception instance (using its
    ``__traceback__`` if it has one); ``Failure(other_failure)`` copies it.
    """

    count = 0  # class-wide serial number, as Twisted numbers its Failures
    pickled = 0  # 1 on a Failure that went through pickle (its tb is gone)
    captureVars = False  # accepted, never honoured: see the module docstring

    def __init__(self, exc_value: BaseException | Failure | None = None,
                 exc_type: type | None = None,
                 exc_tb: TracebackType | None = None,
                 captureVars: bool = False) -> None:
        Failure.count += 1
        self.count = Failure.count
        if exc_value is None:
            exc_type, exc_value, exc_tb = sys.exc_info()
            if exc_type is None or exc_value is None:  # both or neither
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
        self._parents: list[str] | None = None

    @classmethod
    def _withoutTraceback(cls, value: BaseException) -> Failure:
        """A Failure of ``value`` that ignores any traceback it carries
        (Twisted's fast path for exceptions made, not raised)."""
        failure = cls(value)
        failure.tb = None
        return failure

    # -- what happened ---------------------------------------------------
    @property
    def frames(self) -> list[Frame]:
        """Traceback frames, outermost first, extracted on first use (with
        the frames of an earlier raise of the same exception after them)."""
        if self._frames is None:
            frames = _frames_of(self.tb)
            earlier = getattr(self.value, _EARLIER_FRAMES, None)
            if earlier:
                frames = [f for f in frames if f[0] not in _RERAISE_FUNCTIONS] + earlier
            self._frames = frames
        return self._frames

    @frames.setter
    def frames(self, frames: list[Frame]) -> None:
        self._frames = frames

    @property
    def stack(self) -> list[Frame]:
        """Always empty, as in Twisted since 24.10 (the frames above the
        handler were never worth their cost); kept so old code still reads
        and sets it."""
        return []

    @stack.setter
    def stack(self, frames: list[Frame]) -> None:
        """Ignored, as in Twisted."""

    @property
    def parents(self) -> list[str]:
        """Dotted names of the exception's class and its bases."""
        if self._parents is None:
            self._parents = ([qual(c) for c in self.type.__mro__]
                             if isinstance(self.type, type) else [])
        return self._parents

    @parents.setter
    def parents(self, parents: list[str]) -> None:
        self._parents = parents

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
            elif (getattr(error, "__module__", None) == "twisted.internet.error"
                  and "reactor.error." + error.__qualname__ in self.parents):
                # Code not yet ported (a library protocol) that checks for
                # Twisted's ConnectionDone & co. on loopscope's reactor.
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
        extracted frames so the Failure can still be printed — and so a
        Failure made when the exception is raised again still shows them.  A
        Deferred does this to a Failure left at the end of its chain."""
        frames = self.frames
        self.tb = None
        value = self.value
        if getattr(value, "__traceback__", None) is not None:
            value.__traceback__ = None
        if frames:
            try:
                setattr(value, _EARLIER_FRAMES, frames)
            except (AttributeError, TypeError):
                pass  # an exception that takes no attributes: frames stay here only

    def getTracebackObject(self) -> TracebackType | Any:
        """The traceback: the real one until cleaned, then a stand-in built
        from the frames (enough for ``traceback`` and ``pdb.post_mortem``);
        None if there are no frames."""
        if self.tb is not None:
            return self.tb
        tb = None
        for func, filename, line, _, _ in reversed(self.frames):
            tb = _StandInTraceback(_StandInFrame(func, filename, line), line, tb)
        return tb

    # -- pickling ----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Everything but the traceback (frames hold whole object graphs and
        do not pickle); ``frames`` and ``parents`` are kept as lists."""
        state = self.__dict__.copy()
        state["frames"] = self.frames
        state["parents"] = self.parents
        state.pop("_frames", None)
        state.pop("_parents", None)
        state["tb"] = None
        state["pickled"] = 1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.pop("stack", None)
        state["_frames"] = state.pop("frames", None)
        state["_parents"] = state.pop("parents", None)
        self.__dict__.update(state)

    # -- formatting ------------------------------------------------------
    def printTraceback(self, file: TextIO | None = None, elideFrameworkCode: int = 0,
                       detail: str = "default") -> None:
        """Write the traceback as Python would (``detail`` is ``"default"``,
        ``"brief"`` — one line per frame — or ``"verbose"``)."""
        if file is None:
            file = sys.stderr
        w = file.write
        frames = self.frames
        if detail == "verbose":
            w(f"*--- Failure #{self.count}{' (pickled) ' if self.pickled else ' '}---\n")
        elif detail == "brief":
            heading = "Traceback" if frames else "Traceback (failure with no frames)"
            w(f"{heading}: {safe_str(self.type)}: {safe_str(self.value)}\n")
        else:
            w("Traceback (most recent call last):\n")
        if frames:
            format_frames(frames, w, "verbose-vars-not-captured" if detail == "verbose" else detail)
        elif detail != "brief":
            w("Failure: ")
        if detail != "brief":
            type_name = qual(self.type) if isinstance(self.type, type) else safe_str(self.type)
            w(f"{type_name}: {safe_str(self.value)}\n")
        if detail == "verbose":
            w(f"*--- End of Failure #{self.count} ---\n")

    def printBriefTraceback(self, file: TextIO | None = None, elideFrameworkCode: int = 0) -> None:
        """The traceback, one ``file:line:function`` line per frame."""
        self.printTraceback(file, elideFrameworkCode, detail="brief")

    def printDetailedTraceback(self, file: TextIO | None = None,
                               elideFrameworkCode: int = 0) -> None:
        """The traceback framed by ``*--- Failure #n ---`` lines (Twisted's
        verbose form; variables are never captured, and it says so)."""
        self.printTraceback(file, elideFrameworkCode, detail="verbose")

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


class _StandInCode:
    """The part of a code object a formatted traceback reads."""

    def __init__(self, name: str, filename: str) -> None:
        self.co_name = name
        self.co_filename = filename
        self.co_qualname = name
        self.co_firstlineno = 0
        self.co_argcount = 0
        self.co_flags = 0

    def co_positions(self) -> Any:
        return iter(())


class _StandInFrame:
    """A frame of a cleaned Failure's stand-in traceback (no variables)."""

    def __init__(self, name: str, filename: str, line: int) -> None:
        self.f_code = _StandInCode(name, filename)
        self.f_lineno = line
        self.f_globals: dict[str, Any] = {}
        self.f_locals: dict[str, Any] = {}
        self.f_back = None
        self.f_lasti = -1


class _StandInTraceback:
    """A stand-in traceback entry: what ``traceback`` and ``pdb`` walk."""

    def __init__(self, frame: _StandInFrame, line: int,
                 next_tb: _StandInTraceback | None) -> None:
        self.tb_frame = frame
        self.tb_lineno = line
        self.tb_next = next_tb
        self.tb_lasti = -1
