"""asyncio Tasks and Futures as the trace's Deferreds: created, done, awaited, never retrieved.

asyncio's Future and Task are C types: they take no attribute (no ``_trace_id``) and their
methods cannot be wrapped.  So each one the loop creates (``create_future``,
``create_task``) gets a :class:`Tag`: its trace id and creation site, kept in a side table
by ``id()`` (checked against a weak reference, so a reused address is never mistaken for
the old future), and added as the future's first done-callback.  When the future completes
it schedules its callbacks through ``loop.call_soon``, which sees the tag and records the
``dfire`` there and then, without scheduling it: completion is seen at the moment it
happens, for the price of one callback entry.  A future the loop did not create (a
``Future()`` made directly) is tagged when it is first seen (awaited by a task), with site 0.

What is not seen: ``add_done_callback`` on a C Future (its callbacks show up as the calls
they become); a task's own done-callback wake-up is recorded as ``dadd`` + ``dchain`` when
the task starts awaiting (after each step, from ``Task._fut_waiter``).
"""

from __future__ import annotations

import os
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from tracer.adapters._loop_calls import code_site, is_machinery, record
from tracer.recorder import cut, safe_text, tb_frames

if TYPE_CHECKING:
    from tracer.session import Tracer

_now = time.monotonic_ns
_dumps = orjson.dumps
#: Futures that failed, kept to name one whose exception is never retrieved (reported when
#: it is collected, after it left the side table).  Bounded: a retrieved one is never told.
FAILED_KEPT = 4096
#: Side-table size at which entries of futures collected while pending are swept out.
SWEEP_AT = 10_000

#: Frames of the adapters are skipped too when naming where a future was created.
_ADAPTERS_DIR = os.path.dirname(__file__) + os.sep


class Tag:
    """A Future's trace identity, and its first done-callback (it records the ``dfire``)."""

    __slots__ = ("_trace_id", "site", "ref")

    def __init__(self, fut: Any, site: int) -> None:
        self._trace_id: int | None = None  # given by the C probe (deferred_id)
        self.site = site
        self.ref = weakref.ref(fut)

    def __call__(self, fut: Any) -> None:
        """Run as a done-callback only where ``call_soon`` did not take it (a loop subclass
        with its own call_soon): the completion is recorded one loop turn late then."""
        if _tasks is not None:
            _tasks.fired(self, fut)

    def __repr__(self) -> str:
        return "<loopscope: records this future's completion>"


def creation_site(session: Tracer, frame: Any) -> int:
    """Site of the line that created a future: the first frame outside asyncio and this
    package, from ``frame`` outward."""
    while frame is not None and (is_machinery(frame.f_code)
                                 or frame.f_code.co_filename.startswith(_ADAPTERS_DIR)):
        frame = frame.f_back
    if frame is None:
        return 0
    return session.recorder.line_site(frame.f_code, frame.f_lineno)


class Tasks:
    """The side table of Futures and Tasks and the events about them."""

    def __init__(self, session: Tracer) -> None:
        self.session = session
        self.t0 = session.recorder.t0
        self._append = session.recorder.append
        self._native = session.probe.native
        self._tags: dict[int, Tag] = {}
        self._sweep_at = SWEEP_AT
        self._failed: OrderedDict[int, Tag] = OrderedDict()

    # -- creation and completion -----------------------------------------------------
    def created(self, fut: Any, site: int) -> Tag:
        """``fut`` was created at ``site``: ``dnew``, and follow its completion."""
        tag = Tag(fut, site)
        d = self._native.deferred_id(tag)
        tags = self._tags
        tags[id(fut)] = tag
        if len(tags) >= self._sweep_at:
            self._sweep()
        self._append(_dumps(["dnew", _now() - self.t0, d, site]))
        fut.add_done_callback(tag)
        return tag

    def tag_of(self, fut: Any) -> Tag:
        """The tag of ``fut``, giving it one (site unknown) if it was not created by a loop
        method the tracer follows."""
        tag = self._tags.get(id(fut))
        if tag is not None and tag.ref() is fut:
            return tag
        return self.created(fut, 0)

    def fired(self, tag: Tag, fut: Any) -> None:
        """``fut`` completed: ``dfire`` (failed, or cancelled)."""
        if self._tags.get(id(fut)) is tag:
            del self._tags[id(fut)]
        if fut.cancelled():
            record(self.session, {"t": _now() - self.t0, "ev": "dfire", "d": tag._trace_id,
                                  "fail": True, "cancelled": True})
            return
        failed = fut._exception is not None   # not .exception(): that would mark it retrieved
        self._native.deferred_fired(tag, failed)
        if failed:
            self._failed[id(fut)] = tag
            if len(self._failed) > FAILED_KEPT:
                self._failed.popitem(last=False)

    def _sweep(self) -> None:
        """Drop the entries of futures collected while pending (they never completed)."""
        tags = self._tags
        for key in [k for k, tag in tags.items() if tag.ref() is None]:
            del tags[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(tags))

    # -- tasks awaiting -------------------------------------------------------------------
    def awaiting(self, task: Any, step_site: int) -> None:
        """After a step: if ``task`` now waits on a future (or task), it added its wake-up
        as a done-callback of it (``dadd``) and waits for it (``dchain``)."""
        waiter = task._fut_waiter
        if waiter is None:
            return
        inner = self.tag_of(waiter)
        outer = self.tag_of(task)
        self._append(_dumps(["dadd", _now() - self.t0, inner._trace_id, step_site, 0]))
        self.session.probe.deferred_chained(outer, inner)

    # -- exceptions never retrieved ---------------------------------------------------------
    def never_retrieved(self, fut: Any, exc: BaseException) -> None:
        """``fut`` is being collected holding ``exc`` that nobody retrieved: ``unhandled``."""
        tag = self._failed.pop(id(fut), None)
        if tag is None:
            tag = self._tags.get(id(fut))
        d, site = (tag._trace_id or 0, tag.site) if tag is not None else (0, 0)
        record(self.session, {"t": _now() - self.t0, "ev": "unhandled", "d": d, "site": site,
                              "exc": cut(type(exc).__name__), "msg": safe_text(exc),
                              "stack": tb_frames(exc.__traceback__)})


def step_names(session: Tracer, coro: Any) -> tuple[int, int]:
    """``(site, resumed)`` of a task step about to run: the innermost coroutine of the
    task's await chain outside asyncio (else the task's own), and the line it resumes at."""
    named = coro
    c = coro
    for _ in range(64):  # an await chain deeper than this is a runaway recursion
        code = getattr(c, "cr_code", None) or getattr(c, "gi_code", None)
        if code is None:
            break
        if not is_machinery(code):
            named = c
        c = getattr(c, "cr_await", None) if hasattr(c, "cr_await") else getattr(c, "gi_yieldfrom", None)
        if c is None:
            break
    code = getattr(named, "cr_code", None) or getattr(named, "gi_code", None)
    if code is None:
        return 0, 0
    frame = getattr(named, "cr_frame", None) or getattr(named, "gi_frame", None)
    site = code_site(session, code)
    if frame is None:
        return site, 0
    return site, session.recorder.line_site(code, frame.f_lineno)


#: The running side table (set while the adapter is installed), for :meth:`Tag.__call__`.
_tasks: Tasks | None = None


def start(session: Tracer) -> Tasks:
    global _tasks
    _tasks = Tasks(session)
    return _tasks


def stop() -> None:
    global _tasks
    _tasks = None
