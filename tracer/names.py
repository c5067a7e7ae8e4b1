"""Naming what ran the way its author thinks of it: the user's code, not the loop's plumbing.

A trace names every callback by the function the loop called, and a stall's stack runs from that
function inward.  For a user both start in the wrong place: a timer that fired a Deferred is
``Deferred.callback``, a LoopingCall is ``LoopingCall.__call__``, a protocol's read is the
framework's ``LineReceiver.dataReceived``.  The code they wrote is further in.  This module tells
the user's files from the framework's (loopscope's own modules, the standard library, installed
packages) and picks the innermost user frame; the summary and the dashboard both name stalls
with it, so they count and call them the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from tracer.model import Frame, Site, Stall

_ROOT = Path(__file__).resolve().parent.parent
#: loopscope's own modules as ``package/module.py`` (``tracer/adapters/x.py``), from this install.
#: The demo is the exception: it plays the user's app.
_OWN = frozenset(
    str(path.relative_to(_ROOT))
    for package in ("reactor", "tracer", "tui", "loopscope")
    for path in (_ROOT / package).rglob("*.py")
) - {"tracer/demo.py"}
_LIBRARY = re.compile(r"[/\\](?:site|dist)-packages[/\\]"
                      r"|[/\\]lib[/\\](?:python|pypy)\d(?:\.\d+)?[/\\]")


def is_user_file(file: str) -> bool:
    """Whether ``file`` holds the app's own code: not loopscope's, not the standard library's
    or an installed package's, not built in (``""``) or frozen (``<frozen ...>``)."""
    if not file or file.startswith("<") or _LIBRARY.search(file):
        return False
    parts = file.replace("\\", "/").split("/")
    return not any("/".join(parts[-k:]) in _OWN for k in (2, 3))


def user_frame(stack: Sequence[Frame]) -> Frame | None:
    """The innermost frame of the app's own code (stacks are innermost last), if any."""
    for frame in reversed(stack):
        if is_user_file(frame.file):
            return frame
    return None


#: Code objects a user reads as part of the function around them.
_INLINE = re.compile(r"\.<locals>\.<(?:genexpr|listcomp|dictcomp|setcomp)>$")


def frame_name(func: str) -> str:
    """A frame's function as its author knows it: a generator expression or comprehension is
    the function it is written in (``compact.<locals>.<genexpr>`` is ``compact``)."""
    return _INLINE.sub("", func)


def frame_site(frame: Frame) -> Site:
    """A stack frame as the place its author knows: function and the line it was at."""
    return Site(frame_name(frame.func), frame.file, frame.line)


def stall_culprit(stall: Stall, site: Callable[[int], Site]) -> Site:
    """What a stall is named after, as a Site (``line``: the stuck line when a stack sample
    shows it, else the function's ``def`` line): the innermost user frame of its latest stack
    sample; without one, the innermost blocking call nested in it that is user code, then the
    first user callback it ran (the Deferred's callback a timer fired), then its own callback."""
    frame = user_frame(stall.stack)
    if frame is not None:
        return frame_site(frame)
    for nested in reversed(stall.chain):
        if is_user_file(site(nested.site).file):
            return site(nested.site)
    for nested_site in stall.nested_sites:
        if is_user_file(site(nested_site).file):
            return site(nested_site)
    return site(stall.call.site)


def is_inherited(site: Site) -> bool:
    """Whether a callback site is a method its class inherited: the trace names it after the
    instance's class (``__main__.Server.dataReceived``) but its file and line are where the
    method is defined, in a base class's module (``reactor/basic.py``)."""
    if not site.file or "." not in site.fn:
        return False
    if site.fn.startswith("__main__."):
        return not is_user_file(site.file)    # the script's class, a framework's method
    parts = site.file.replace("\\", "/").removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    modules = (".".join(parts[-k:]) for k in range(1, len(parts) + 1))
    return not any(site.fn.startswith(module + ".") for module in modules)


def short_path(file: str) -> str:
    """A path for reading: an installed package's or the standard library's file from its
    package (``twisted/internet/tcp.py``, ``json/decoder.py``), loopscope's from its package,
    anything else by its name (the recording machine's directories mean nothing here)."""
    parts = file.replace("\\", "/").split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("site-packages", "dist-packages") or re.fullmatch(
                r"(?:python|pypy)\d(?:\.\d+)?", parts[i]):
            return "/".join(parts[i + 1:])
    for k in (3, 2):
        if "/".join(parts[-k:]) in _OWN:
            return "/".join(parts[-k:])
    return parts[-1]


def speaks_asyncio(runtime: str) -> bool:
    """Whether the runtime traced (tracer.format.RUNTIMES) is asyncio's: the reports then use
    its words (Tasks, exceptions never retrieved, to_thread) for what a reactor calls Deferreds,
    unhandled failures and deferToThread."""
    return runtime in ("asyncio", "uvloop")


#: What a call's ``kind`` means, for a sentence (tracer.format's kinds).
KIND_WORDS = {"timer": "a timer (callLater)", "read": "a read callback",
              "write": "a write callback", "thread": "a hand-back from a thread (callFromThread)",
              "trigger": "a system event trigger", "deferred": "a Deferred callback",
              "task": "a step of an asyncio Task", "other": "a callback"}
#: The same where asyncio's words differ.  Its ``timer`` calls are the handles of call_soon
#: as well as of call_later (both are the loop's scheduled callbacks, one kind in the trace).
ASYNCIO_KIND_WORDS = {"timer": "a callback (call_soon or call_later)",
                      "thread": "a hand-back from a thread (call_soon_threadsafe)"}


def kind_words(kind: str, runtime: str = "reactor") -> str:
    """A call's ``kind`` in the words of ``runtime``: "a timer (callLater)" on a reactor, "a
    callback (call_soon or call_later)" on asyncio."""
    if speaks_asyncio(runtime) and kind in ASYNCIO_KIND_WORDS:
        return ASYNCIO_KIND_WORDS[kind]
    return KIND_WORDS.get(kind, "a callback")


def pending_word(runtime: str) -> str:
    """What a runtime calls the things that are pending until they fire: a reactor's Deferreds
    are asyncio's Tasks (and Futures).  Only the words change: the JSON keys stay ``deferreds``
    (docs/asyncio.md)."""
    return "Tasks" if speaks_asyncio(runtime) else "Deferreds"
