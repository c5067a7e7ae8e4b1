"""The trace format, defined once: every event kind, its fields and their types, the compact
rows and their field order, and the version.

docs/trace-format.md explains the format to people; this module is what code uses.  The
reader decodes rows and checks events with it, the model, summary and export name fields as
it does, and a test checks the C writer's row table (``ROWS[]`` in tracer/_native.c) against
:data:`ROWS` and :data:`ROW_TYPES`.

A line is one JSON value.  Most events are objects ``{"t": ns, "ev": kind, ...}``; the kinds
that occur once or more per callback run are written as compact rows, ``[kind, t, ...]``, the
object's fields in the order of :data:`ROWS`.  A reader turns a row into the object form
(:func:`event_from_row`) and accepts the object form of every kind too.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Final

#: The format version this loopscope writes and reads.  It changes when a field changes
#: meaning or a kind is removed; adding a kind or a field does not.
VERSION: Final = 1
#: Versions this reader understands (v1 traces must keep opening).
READABLE_VERSIONS: Final = frozenset({1})
#: The version of the summary index entries (tracer/index.py) beside the traces' format: an
#: entry of another version is stale, and the trace is read again.
SUMMARY_INDEX_VERSION: Final = 1

# -- bounds on application text ------------------------------------------------------------
# Text in a trace came from the application.  The recorder cuts it, and readers cut it again
# (a hand-made or damaged trace may hold anything), so that no view has to.
#: Messages, labels, reprs, addresses.
MAX_TEXT: Final = 200
#: Function names (a site's ``fn``, a frame's function).
MAX_NAME: Final = 300
#: File paths (a site's ``file``, a frame's file).
MAX_PATH: Final = 1024
#: Frames of a traceback or a stall sample (the innermost are kept).
MAX_FRAMES: Final = 64
#: Items of the header's ``argv`` (a longer one ends with an item saying how many more).
MAX_ARGS: Final = 64


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` bounded to ``limit`` characters, the cut marked with ``…``."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stack_frame(file: str, line: int, func: str) -> list:
    """One ``[file, line, function]`` frame of a stack, its names bounded."""
    return [cut(file, MAX_PATH), line, cut(func, MAX_NAME)]


# -- field types -------------------------------------------------------------------------
# Each is a predicate on a decoded JSON value.  ``bool`` is a subclass of ``int`` in Python,
# so integers are checked with ``type(v) is int``: ``true`` is not a number in a trace.
# Integers are 64-bit signed, as the writer writes them: a bigger one is damage, and readers
# that keep times in int64 arrays (tracer.model) rely on it.
Check = Callable[[object], bool]
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


def is_int(v: object) -> bool:
    return type(v) is int and INT_MIN <= v <= INT_MAX


def is_bool(v: object) -> bool:
    return type(v) is bool


def is_str(v: object) -> bool:
    return type(v) is str


def is_number(v: object) -> bool:
    """An int64 or a float (JSON has no infinities: orjson refuses them)."""
    return is_int(v) or type(v) is float


def is_wall_time(v: object) -> bool:
    """Unix time in seconds, between 1970 and 2286 (anything else is damage)."""
    return (type(v) is int or type(v) is float) and 0 <= v < 1e10


#: The longest blocking threshold (ms): a day.
MAX_THRESHOLD_MS: Final = 86_400_000


def is_threshold(v: object) -> bool:
    """A blocking threshold in ms: positive, at most :data:`MAX_THRESHOLD_MS`."""
    return (type(v) is int or type(v) is float) and 0 < v <= MAX_THRESHOLD_MS


def is_int_or_null(v: object) -> bool:
    return v is None or is_int(v)


def is_str_or_null(v: object) -> bool:
    return v is None or type(v) is str


def is_stack(v: object) -> bool:
    """``[[file, line, function], ...]``, innermost last."""
    return type(v) is list and all(
        type(f) is list and len(f) == 3 and type(f[0]) is str and is_int(f[1])
        and type(f[2]) is str for f in v)


def is_ready(v: object) -> bool:
    """A poll's ``[[fd, mask], ...]``."""
    return type(v) is list and all(
        type(p) is list and len(p) == 2 and is_int(p[0]) and is_int(p[1]) for p in v)


def is_str_list(v: object) -> bool:
    return type(v) is list and all(type(a) is str for a in v)


# -- the kinds ---------------------------------------------------------------------------
#: Every event kind: its fields (``t`` and ``ev`` aside) with their type, and whether the
#: field must be present.  docs/trace-format.md says what each one means.
Fields = dict[str, tuple[Check, bool]]
REQUIRED, OPTIONAL = True, False

KINDS: Final[dict[str, Fields]] = {
    "site": {"id": (is_int, REQUIRED), "fn": (is_str, REQUIRED), "file": (is_str, REQUIRED),
             "line": (is_int, REQUIRED)},
    "call": {"kind": (is_str, REQUIRED), "site": (is_int, REQUIRED), "dur": (is_int, REQUIRED),
             "depth": (is_int, REQUIRED), "timer": (is_int, OPTIONAL), "fd": (is_int, OPTIONAL),
             "lag": (is_int, OPTIONAL), "exc": (is_str, OPTIONAL),
             "resumed": (is_int, OPTIONAL)},
    "dcall": {"d": (is_int, REQUIRED), "site": (is_int, REQUIRED), "dur": (is_int, REQUIRED),
              "depth": (is_int, REQUIRED), "eb": (is_bool, REQUIRED), "fail": (is_bool, REQUIRED)},
    "timer": {"id": (is_int, REQUIRED), "site": (is_int, REQUIRED), "fn": (is_int, REQUIRED),
              "due": (is_int_or_null, REQUIRED)},
    "tcancel": {"id": (is_int, REQUIRED)},
    "dnew": {"d": (is_int, REQUIRED), "site": (is_int, REQUIRED)},
    "dadd": {"d": (is_int, REQUIRED), "cb": (is_int, REQUIRED), "eb": (is_int, REQUIRED)},
    "dfire": {"d": (is_int, REQUIRED), "fail": (is_bool, REQUIRED),
              "cancelled": (is_bool, OPTIONAL)},
    "dchain": {"d": (is_int, REQUIRED), "inner": (is_int, REQUIRED)},
    "dcancel": {"d": (is_int, REQUIRED)},
    "unhandled": {"d": (is_int, REQUIRED), "site": (is_int, REQUIRED), "exc": (is_str, REQUIRED),
                  "msg": (is_str, OPTIONAL), "stack": (is_stack, OPTIONAL),
                  "created": (is_stack, OPTIONAL), "invoked": (is_stack, OPTIONAL)},
    "fdadd": {"fd": (is_int, REQUIRED), "mode": (is_str, REQUIRED), "type": (is_str, OPTIONAL)},
    "fdrm": {"fd": (is_int, REQUIRED), "mode": (is_str, REQUIRED)},
    "poll": {"wait": (is_int, REQUIRED), "ready": (is_ready, REQUIRED)},
    "conn": {"fd": (is_int, REQUIRED), "role": (is_str_or_null, OPTIONAL),
             "host": (is_str_or_null, OPTIONAL), "peer": (is_str_or_null, OPTIONAL)},
    "close": {"fd": (is_int, REQUIRED), "reason": (is_str, OPTIONAL), "in": (is_int, OPTIONAL),
              "out": (is_int, OPTIONAL)},
    "bytes": {"fd": (is_int, REQUIRED), "in": (is_int, REQUIRED), "out": (is_int, REQUIRED)},
    "tsub": {"job": (is_int, REQUIRED), "fn": (is_int, OPTIONAL)},
    "tstart": {"job": (is_int, REQUIRED), "tid": (is_int, OPTIONAL)},
    "tdone": {"job": (is_int, REQUIRED), "exc": (is_str, OPTIONAL), "msg": (is_str, OPTIONAL)},
    "stall": {"site": (is_int, REQUIRED), "kind": (is_str, REQUIRED), "depth": (is_int, REQUIRED),
              "since": (is_int, REQUIRED), "blocked": (is_int, REQUIRED),
              "stack": (is_stack, REQUIRED)},
    "loop": {"dt": (is_int, REQUIRED), "it": (is_int, REQUIRED), "busy": (is_int, REQUIRED),
             "idle": (is_int, REQUIRED), "calls": (is_int, REQUIRED),
             "lag_max": (is_int, REQUIRED), "lag_mean": (is_int, REQUIRED)},
    "reactor": {"state": (is_str, REQUIRED)},
    "mark": {"label": (is_str, REQUIRED)},
    "error": {"site": (is_int, OPTIONAL), "kind": (is_str, OPTIONAL), "exc": (is_str, REQUIRED),
              "msg": (is_str, OPTIONAL), "stack": (is_stack, OPTIONAL)},
    "runtime": {"name": (is_str, REQUIRED), "version": (is_str, OPTIONAL),
                "loop": (is_str, OPTIONAL), "unseen": (is_str, OPTIONAL)},
    "hookerr": {"hook": (is_str, REQUIRED), "exc": (is_str, REQUIRED), "msg": (is_str, OPTIONAL)},
    "drop": {"n": (is_int, REQUIRED)},
    "child": {"pid": (is_int, REQUIRED), "file": (is_str_or_null, REQUIRED)},
    "end": {"events": (is_int, OPTIONAL), "dropped": (is_int, OPTIONAL),
            "hook_errors": (is_int, OPTIONAL), "reason": (is_str, OPTIONAL)},
}

#: The header (line 1): its fields and their types.
HEADER: Final[Fields] = {
    "v": (is_int, REQUIRED), "pid": (is_int, OPTIONAL), "argv": (is_str_list, OPTIONAL),
    "python": (is_str, OPTIONAL), "start_wall": (is_wall_time, OPTIONAL),
    "threshold_ms": (is_threshold, OPTIONAL), "clock": (is_str, OPTIONAL),
    "runtime": (is_str, OPTIONAL), "parent": (is_str, OPTIONAL), "ppid": (is_int, OPTIONAL),
    "forked": (is_bool, OPTIONAL),
}

#: ``name`` of a ``runtime`` event (and the header's ``runtime``): the loop traced.  Views
#: use the runtime's words (Tasks for asyncio, Deferreds otherwise).
RUNTIMES: Final = ("reactor", "asyncio", "uvloop", "twisted")

#: ``kind`` of a ``call``: what made the loop run user code.  ``deferred`` is the kind of a
#: ``dcall`` and of a ``stall`` inside one; ``task`` is an asyncio task step.
CALL_KINDS: Final = ("timer", "read", "write", "thread", "trigger", "other", "deferred", "task")

# -- compact rows ------------------------------------------------------------------------
#: The kinds written as rows, and the object fields in row order (after the kind).  In a
#: ``call`` row, ``x`` is the ``timer`` id for a timer and the ``fd`` for read/write, and a
#: ``null`` ``x``, ``lag`` or ``exc`` means the field is absent.  A ``poll`` row ends in its
#: ready ``fd, mask`` pairs.
ROWS: Final[dict[str, tuple[str, ...]]] = {
    "call": ("t", "kind", "site", "dur", "depth", "x", "lag", "exc"),
    "dcall": ("t", "d", "site", "dur", "depth", "eb", "fail"),
    "timer": ("t", "id", "site", "fn", "due"),
    "dnew": ("t", "d", "site"),
    "dadd": ("t", "d", "cb", "eb"),
    "dfire": ("t", "d", "fail"),
    "poll": ("t", "wait"),
}
#: What the C writer writes in each row, one letter per field of :data:`ROWS` (``i`` an
#: integer or null, ``k`` a call kind, ``b`` a boolean); a ``call`` row's ``exc`` is always
#: ``null`` there (a call that raised is written in object form: its exception's type name is
#: application text).  A test compares this with tracer/_native.c.
ROW_TYPES: Final[dict[str, str]] = {
    "call": "ikiiiii", "dcall": "iiiiibb", "timer": "iiiii", "dnew": "iii", "dadd": "iiii",
    "dfire": "iib", "poll": "ii",
}

#: Fields of a ``call`` row that are dropped from the object form when null.
_CALL_OPTIONAL = ("lag", "exc")


def event_from_row(row: list) -> dict | None:
    """The object form of a compact row, or None when ``row`` is not a well-formed one."""
    if not row or type(row[0]) is not str:
        return None
    kind = row[0]
    fields = ROWS.get(kind)
    if fields is None:
        return None
    if kind == "poll":
        if len(row) < 3 or len(row) % 2 == 0:
            return None
        return {"t": row[1], "ev": "poll", "wait": row[2],
                "ready": [[row[i], row[i + 1]] for i in range(3, len(row), 2)]}
    if len(row) != len(fields) + 1:
        return None
    event = {"t": row[1], "ev": kind}
    event.update(zip(fields[1:], row[2:]))
    if kind == "call":
        x = event.pop("x")
        if x is not None:
            event["timer" if event["kind"] == "timer" else "fd"] = x
        for name in _CALL_OPTIONAL:
            if event[name] is None:
                del event[name]
    return event


def check_fields(obj: dict, fields: Fields) -> str | None:
    """Why ``obj`` does not fit ``fields`` (a missing field or a wrong type), else None."""
    for name, (check, required) in fields.items():
        if name in obj:
            if not check(obj[name]):
                return f"its {name!r} has the wrong type"
        elif required:
            return f"it has no {name!r}"
    return None


def check_event(event: object) -> str | None:
    """Why ``event`` is not a valid trace event, else None.

    An event is an object with a string ``ev`` and an integer ``t`` (a reader takes a missing
    ``t`` as the time of the event before, as the model does); a known kind's fields
    must have their types.  Unknown kinds are valid (a newer writer may add kinds: readers
    ignore what they do not know), and so are unknown fields.
    """
    if type(event) is not dict:
        return "not a JSON object"
    kind = event.get("ev")
    if type(kind) is not str:
        return "it has no event kind"
    if not is_int(event.get("t", 0)):
        return "its 't' is not an integer"
    fields = KINDS.get(kind)
    return None if fields is None else check_fields(event, fields)
