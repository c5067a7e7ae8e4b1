"""What the asyncio adapter assumes about the asyncio it patches, checked before it patches.

The traced ``call_soon``, ``call_soon_threadsafe``, ``call_later``, ``call_at`` and
``Handle._run`` (tracer/adapters/asyncio_loop.py) are copies of asyncio's, with the probe's
hooks in them: they are only right while asyncio's own methods do what was copied.  A method
is known by the names its code uses (``co_names``: the attributes it reads, the functions it
calls), which change when its work changes and not with a comment or a line number.  Each
method has the shapes CPython 3.11 to 3.14 give it; an asyncio whose method has another shape
(a newer Python, a patched one) is refused with :class:`tracer.adapters.AdapterError`, naming
the method, rather than traced by a copy that no longer does its work.
"""

from __future__ import annotations

from asyncio import base_events, events
from typing import Any

from tracer.adapters import AdapterError

_CALL_SOON = frozenset({"_call_soon", "_check_callback", "_check_closed", "_check_thread",
                        "_debug", "_source_traceback"})
_HANDLE_RUN = frozenset({"BaseException", "KeyboardInterrupt", "SystemExit", "_args",
                         "_callback", "_context", "_format_callback_source", "_loop",
                         "_source_traceback", "call_exception_handler", "format_helpers", "run"})
_THREADSAFE = frozenset({"_check_callback", "_check_closed", "_debug", "_source_traceback",
                         "_write_to_self"})

#: (owner, method) -> the shapes it is known in.
KNOWN: dict[tuple[Any, str], tuple[frozenset[str], ...]] = {
    (base_events.BaseEventLoop, "call_soon"): (_CALL_SOON,),
    # call_soon's handle (the traced call_soon makes it itself).
    (base_events.BaseEventLoop, "_call_soon"): (
        frozenset({"Handle", "_ready", "_source_traceback", "append", "events"}),),
    (base_events.BaseEventLoop, "call_soon_threadsafe"): (
        _THREADSAFE | {"_call_soon"},                                  # 3.11 to 3.13
        _THREADSAFE | {"_ThreadSafeHandle", "_ready", "append", "events"}),  # 3.14
    (base_events.BaseEventLoop, "call_later"): (
        frozenset({"TypeError", "_source_traceback", "call_at", "time"}),),
    (base_events.BaseEventLoop, "call_at"): (
        frozenset({"TimerHandle", "TypeError", "_check_callback", "_check_closed",
                   "_check_thread", "_debug", "_scheduled", "_source_traceback", "events",
                   "heappush", "heapq"}),),
    (events.Handle, "_run"): (
        _HANDLE_RUN,                       # 3.11, 3.12
        _HANDLE_RUN | {"get_debug"}),      # 3.13, 3.14: the source is formatted for debug
}


def check() -> None:
    """Raise AdapterError if a method the adapter copies is not in a shape it knows."""
    for (owner, name), shapes in KNOWN.items():
        method = vars(owner).get(name)
        code = getattr(method, "__code__", None)
        if code is None or frozenset(code.co_names) not in shapes:
            raise AdapterError(
                f"asyncio is not traced: this Python's asyncio {owner.__name__}.{name} is not "
                f"the one the asyncio adapter copies (known: CPython 3.11 to 3.14)")
