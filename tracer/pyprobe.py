"""The probe in pure Python: the same ``Buffer`` and ``Probe`` as tracer/_native.c.

Used when the C extension is not built (tracer.backend chooses), and the reference
implementation of the probe contract (reactor/_instrument.py): read this module to know what
the C probe does, and the tests run the same checks against both.  It writes the same lines:
compact rows are tuples here, serialised by orjson at drain time into exactly the bytes the C
writer produces (``["dcall",120,7,3,5000,1,false,false]``), and rare events arrive as finished
lines from tracer.probe.TraceProbe, the "delegate" that also serves the slow paths.

What it keeps, like the C probe: the stack of calls in progress (``top()`` for the watchdog),
sites cached per code object (and class, for a bound method) and per scheduling line (at most
SITES_CACHED of them), the creation sites of recent Deferreds.  Buffered events hold numbers and finished lines only,
never the application's objects.

Every hook is guarded: an error inside one is handed to ``delegate._hook_failed(hook, exc)``
and never reaches the application.  ``KeyboardInterrupt`` and ``SystemExit`` are not hook
errors (a signal that lands in a hook is the application's), so they pass.

It costs what Python costs: a hook is a Python method call, several times the C probe's
price (README.md, "What tracing costs").
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from itertools import count
from types import CodeType, FunctionType, MethodType

import orjson

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

_now = time.monotonic_ns
_get_ident = threading.get_ident
_getframe = sys._getframe
_dumps = orjson.dumps

#: Call kinds of the probe contract, each mapped to itself; anything else is ``other``.
_KINDS = {k: k for k in ("timer", "read", "write", "thread", "trigger", "other")}
#: Deferreds whose creation site is remembered (to name the Deferred of an ``unhandled``
#: failure, reported after it is gone): the newest ones, by id, as in the C probe.
DEFERRED_SITES = 1 << 17
#: Callables and scheduling lines whose sites are cached, as in the C probe (where the reason
#: for the number is): a full cache forgets them all and fills again, so that it keeps alive
#: none of the functions and classes an application makes and drops at run time.
SITES_CACHED = 4096
#: Lines formatted and written at a time by ``drain``: bounds the drain's own memory.
DRAIN_CHUNK = 8192


def _lines(events: list[Any]) -> tuple[bytes, int]:
    """``events`` as JSON lines, and how many are ``call`` rows.

    Each run of rows between two finished lines is serialised by one orjson call and cut into
    lines at ``],[``: one call per row would cost ten times more (a small bytes object each),
    and rows hold only numbers, booleans, null and their kind's name, so ``],[`` occurs only
    between two of them.
    """
    parts: list[bytes] = []
    rows: list[tuple] = []
    calls = 0

    def put_rows() -> None:
        nonlocal calls
        text = _dumps(rows)[1:-1].replace(b"],[", b"]\n[")
        calls += text.count(b'["call",')
        parts.append(text)
        rows.clear()

    for event in events:
        if type(event) is tuple:
            rows.append(event)
            continue
        if rows:
            put_rows()
        parts.append(event)
    if rows:
        put_rows()
    return b"\n".join(parts) + b"\n", calls


class Buffer:
    """The events recorded since the last drain: compact rows (tuples) and finished lines
    (bytes), at most ``capacity`` of them (more are dropped and counted, except the ``keep``
    lines).  When it holds ``capacity // 2``, a byte is written to ``wake_fd`` (a non-blocking
    pipe the writer waits on), so that it drains before events have to be dropped.

    Any thread may append.  The list is never replaced: ``drain`` takes a copy and deletes
    what it took, so an append racing with a drain lands in this batch or the next one.
    """

    def __init__(self, capacity: int, wake_fd: int = -1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.wake_fd = wake_fd
        self.dropped = 0
        # Loop health, updated by the probe on the reactor thread, read by the writer.
        self.iterations = 0
        self.idle_ns = 0
        self.poll_since = 0  # monotonic ns the current poll started, 0 outside the poller
        self.lag_max = 0
        self.lag_sum = 0
        self.lag_n = 0
        self._events: list[Any] = []
        self._half = capacity // 2
        self._woken = False  # the writer was asked for an early drain of this batch
        self._drop_lock = threading.Lock()
        self._draining = False

    @property
    def pending(self) -> int:
        """Events not drained yet."""
        return len(self._events)

    def add(self, event: Any, keep: bool = False) -> None:
        """Append one event (a row tuple or a finished line); ``keep``: never dropped."""
        events = self._events
        n = len(events)
        if n >= self.capacity and not keep:
            with self._drop_lock:  # appends come from several threads
                self.dropped += 1
            return
        events.append(event)
        if n + 1 >= self._half and not self._woken and self.wake_fd >= 0:
            self._woken = True
            try:
                os.write(self.wake_fd, b"!")
            except OSError:
                pass  # a full pipe: the writer is being woken already

    def line(self, data: bytes, keep: bool = False) -> None:
        """Append a finished line (bytes: one JSON value, no newline).  ``keep``: never
        dropped (``site`` lines: later events refer to them)."""
        if not isinstance(data, bytes):
            raise TypeError("line(data: bytes, keep: bool = False)")
        self.add(data, keep)

    def drain(self, fd: int) -> tuple[int, int]:
        """Write every event buffered so far to ``fd`` as JSON lines; return how many lines
        were written and how many of them were ``call`` rows.  Raises OSError if writing
        failed (the batch is then lost; the buffer stays usable)."""
        if self._draining:
            raise RuntimeError("another thread is draining this buffer")
        self._draining = True
        try:
            events = self._events
            batch = events[:]
            del events[:len(batch)]
            self._woken = False
            calls = 0
            for start in range(0, len(batch), DRAIN_CHUNK):
                text, chunk_calls = _lines(batch[start:start + DRAIN_CHUNK])
                calls += chunk_calls
                while text:
                    text = text[os.write(fd, text):]
            return len(batch), calls
        finally:
            self._draining = False

    def take_lags(self) -> tuple[int, int]:
        """The largest and the mean timer lag (ns) since the last call (0, 0 when none ran)."""
        mean = self.lag_sum // self.lag_n if self.lag_n else 0
        lags = (self.lag_max, mean)
        self.lag_max = self.lag_sum = self.lag_n = 0
        return lags


class Probe:
    """The hot instrumentation points, recording into ``buffer`` (see the module docstring).

    ``watch_fd(obj, fd)`` and ``unwatch_fd(obj)`` tell it the fd of a descriptor, transport
    or reader handle (keyed by id, keeping nothing alive), for the fd of a read or write call.
    ``delegate`` (tracer.probe.TraceProbe) provides ``_fn_site(f) -> (site, code)``,
    ``_origin(frame) -> (site, cacheable)``, ``_call_failed(t, kind, site, dur, depth, x, lag,
    exc)`` and ``_hook_failed(hook, exc)``, and binds the rare hooks as instance attributes.

    A call in progress is the tuple ``(serial, start, kind, code, site, depth, x, y)``:
    ``x, y`` are the timer id and lag, the fd and None, or the Deferred id and is_errback.
    """

    def __init__(self, buffer: Buffer, t0: int, delegate: Any) -> None:
        self.t0 = t0
        #: Thread ident of the reactor (Deferred callbacks elsewhere are not timed).
        self.reactor_thread = _get_ident()
        self._buffer = buffer
        self._add = buffer.add
        self._fds: dict[int, int] = {}  # id(obj) -> fd
        self._delegate = delegate
        self._stack: list[tuple] = []
        self._serials = count(1)
        self._deferred_ids = count(1)
        self._timer_ids = count(1)
        # Site caches, keyed by ids: hashing a code object hashes its whole contents, which
        # would cost more than the rest of a hook.  ``_kept`` holds the code objects and
        # classes whose ids are keys, so that no id is reused while it is cached; together
        # they hold at most SITES_CACHED entries.
        self._fn_sites: dict[Any, int] = {}    # id(code), or (id(code), id(class)) of a method
        self._line_sites: dict[Any, int] = {}  # (id(code), instruction) of a scheduling line
        self._kept: list[Any] = []
        self._dsites: list[tuple[int, int]] = [(0, 0)] * DEFERRED_SITES  # [id & mask] = (id, site)

    # -- guarding and slow paths --------------------------------------------------------
    def _failed(self, hook: str, exc: Exception) -> None:
        """Hand a hook's error to the delegate, which counts it and writes it down."""
        try:
            self._delegate._hook_failed(hook, exc)
        except Exception:  # noqa: BLE001, S110 - nowhere left to report it; the app goes on
            pass

    def _site_and_code(self, hook: str, f: Any) -> tuple[int, Any]:
        """Site of a callable and its code object (or None): functions and bound methods are
        cached here, anything else (partials, builtins, callable instances) asks the
        delegate every time."""
        kind = type(f)
        if kind is FunctionType:
            code = f.__code__
            key: Any = id(code)
            owner = None
        elif kind is MethodType and type(f.__func__) is FunctionType:
            code = f.__func__.__code__
            bound = f.__self__
            # an inherited method is named after the instance's class: one entry per class
            owner = bound if isinstance(bound, type) else type(bound)
            key = (id(code), id(owner))
        else:
            site, code = self._ask(hook, self._delegate._fn_site, f)
            return site, code if type(code) is CodeType else None
        cached = self._fn_sites.get(key)
        if cached is not None:
            return cached, code
        site, found = self._ask(hook, self._delegate._fn_site, f)
        if found is code and site > 0:
            self._cache(self._fn_sites, key, site, code, owner)
        return site, code

    def _caller_site(self, hook: str) -> int:
        """Site of the line that called the hook's caller (callLater, Deferred()), cached per
        instruction when the delegate says the answer does not depend on outer frames."""
        try:
            frame = _getframe(3)  # 0 here, 1 the hook, 2 callLater or Deferred.__init__
        except ValueError:  # no such frame (called from C at the bottom of a thread)
            return 0
        code = frame.f_code
        key = (id(code), frame.f_lasti)
        cached = self._line_sites.get(key)
        if cached is not None:
            return cached
        site, cacheable = self._ask(hook, self._delegate._origin, frame)
        if cacheable is True and site > 0:
            self._cache(self._line_sites, key, site, code, None)
        return site

    def _cache(self, table: dict[Any, int], key: Any, site: int, code: Any, owner: Any) -> None:
        """Cache ``site`` in ``table``, keeping ``code`` and ``owner`` (the objects whose ids
        are in ``key``) alive; a full cache forgets every entry first."""
        if len(self._fn_sites) + len(self._line_sites) >= SITES_CACHED:
            self._fn_sites.clear()
            self._line_sites.clear()
            self._kept = []
        self._kept += (code, owner)
        table[key] = site

    def _ask(self, hook: str, slow_path: Callable[[Any], tuple[int, Any]],
             arg: Any) -> tuple[int, Any]:
        """A slow path's ``(site, extra)``; ``(0, None)`` when it failed (reported): the event
        is still recorded, with an unknown site, as the C probe does."""
        try:
            return slow_path(arg)
        except Exception as exc:  # noqa: BLE001
            self._failed(hook, exc)
            return 0, None

    def _new_trace_id(self, d: Any) -> int:
        """Give Deferred ``d`` a ``_trace_id`` (it was made before tracing).  The hooks read
        the id themselves (``d._trace_id``) and call this only when it is not an int: one
        method call less per hook."""
        did = d._trace_id = next(self._deferred_ids)
        return did

    # -- the loop ---------------------------------------------------------------------------
    def poll_begin(self, timeout: float | None) -> None:
        self._buffer.poll_since = _now()  # nothing here can fail

    def poll_end(self, ready: list[tuple[Any, int]]) -> None:
        try:
            b = self._buffer
            t = _now()
            wait = t - b.poll_since if b.poll_since else 0
            b.poll_since = 0
            b.idle_ns += wait
            b.iterations += 1
            if ready:
                row: list[Any] = ["poll", t - self.t0, wait]
                for key, mask in ready:
                    fd = key[1]  # a SelectorKey: (fileobj, fd, events, data)
                    row.append(fd if type(fd) is int else None)
                    row.append(mask if type(mask) is int else None)
                self._add(tuple(row))
        except Exception as exc:  # noqa: BLE001 - a hook never raises into the app
            self._failed("poll_end", exc)

    def _begin(self, hook: str, kind: str, f: Callable[..., Any], source: Any) -> None:
        """A loop call begins: it goes on the stack even when reading its source failed (its
        end pops it)."""
        site, code = self._site_and_code(hook, f)
        kind = _KINDS.get(kind, "other") if type(kind) is str else "other"
        x = lag = due = None
        try:
            if kind == "timer":
                x = source._trace_id
                due = int(source.time * 1e9)
            elif kind == "read" or kind == "write":
                x = self._fds.get(id(source))
        except Exception as exc:  # noqa: BLE001
            self._failed(hook, exc)
        t = _now()
        if due is not None:
            lag = t - due if t > due else 0
            b = self._buffer
            b.lag_max = max(b.lag_max, lag)
            b.lag_sum += lag
            b.lag_n += 1
        if type(x) is not int:
            x = None
        stack = self._stack
        stack.append((next(self._serials), t, kind, code, site, len(stack), x, lag))

    def _end(self, hook: str, exc: BaseException | None) -> None:
        """The innermost loop call ended; ``exc`` is what escaped it, or None."""
        stack = self._stack
        if not stack:  # tracing started inside a callback
            return
        t = _now()
        _serial, start, kind, _code, site, depth, x, lag = stack.pop()
        if exc is None:
            self._add(("call", t - self.t0, kind, site, t - start, depth, x, lag, None))
            return
        try:  # in object form, by the delegate (the exception's name is application text)
            self._delegate._call_failed(t - self.t0, kind, site, t - start, depth, x, lag, exc)
        except Exception as error:  # noqa: BLE001
            self._failed(hook, error)

    def call_begin(self, kind: str, f: Callable[..., Any], source: Any) -> None:
        self._begin("call_begin", kind, f, source)

    def call_end(self, exc: BaseException | None) -> None:
        self._end("call_end", exc)

    def run_call(self, kind: str, source: Any, f: Callable[..., Any],
                 args: tuple, kw: dict | None) -> Any:
        """call_begin, ``f(*args, **kw)``, call_end; the result or the exception passes."""
        if type(args) is not tuple:
            raise TypeError("run_call(): args must be a tuple")
        self._begin("run_call", kind, f, source)
        try:
            result = f(*args, **kw) if kw else f(*args)
        except BaseException as exc:
            self._end("run_call", exc)
            raise
        self._end("run_call", None)
        return result

    # -- timers ------------------------------------------------------------------------------
    def timer_scheduled(self, call: Any) -> None:
        try:
            site = self._caller_site("timer_scheduled")
            # Unset slots are no function and no due time, as in the C probe: an asyncio
            # task step's ``func`` stays unset (it is named after its coroutine when it runs).
            func = getattr(call, "func", None)
            fn = 0 if func is None else self._site_and_code("timer_scheduled", func)[0]
            due = getattr(call, "time", None)
            tid = call._trace_id = next(self._timer_ids)
            t0 = self.t0
            self._add(("timer", _now() - t0, tid, site, fn,
                       None if due is None else int(due * 1e9) - t0))
        except Exception as exc:  # noqa: BLE001
            self._failed("timer_scheduled", exc)

    # -- Deferreds ------------------------------------------------------------------------
    def deferred_created(self, d: Any) -> None:
        try:
            did = d._trace_id = next(self._deferred_ids)
            site = self._caller_site("deferred_created")
            self._dsites[did & (DEFERRED_SITES - 1)] = (did, site)
            self._add(("dnew", _now() - self.t0, did, site))
        except Exception as exc:  # noqa: BLE001
            self._failed("deferred_created", exc)

    def deferred_callbacks_added(self, d: Any, callback: Any, errback: Any) -> None:
        hook = "deferred_callbacks_added"
        try:
            cb = 0 if callback is None else self._site_and_code(hook, callback)[0]
            eb = 0 if errback is None else self._site_and_code(hook, errback)[0]
            did = d._trace_id
            if type(did) is not int:
                did = self._new_trace_id(d)
            self._add(("dadd", _now() - self.t0, did, cb, eb))
        except Exception as exc:  # noqa: BLE001
            self._failed(hook, exc)

    def deferred_fired(self, d: Any, is_failure: bool) -> None:
        try:
            did = d._trace_id
            if type(did) is not int:
                did = self._new_trace_id(d)
            self._add(("dfire", _now() - self.t0, did, bool(is_failure)))
        except Exception as exc:  # noqa: BLE001
            self._failed("deferred_fired", exc)

    def _end_deferred_callback(self, did: int, t: int, failed: bool) -> None:
        """The call on top of the stack, if it is a callback of Deferred ``did``, ends at
        ``t`` (``failed``: the chain went on on the failure path)."""
        stack = self._stack
        if stack:
            _serial, start, kind, _code, site, depth, x, is_errback = stack[-1]
            if kind == "deferred" and x == did:
                stack.pop()
                self._add(("dcall", t - self.t0, did, site, t - start, depth, is_errback, failed))

    def deferred_callback_begin(self, d: Any, f: Callable[..., Any], is_errback: bool,
                                fired: bool = False) -> None:
        """A callback of ``d`` begins and the one before it in this pass (if any) ends: one
        clock reading for both.  Callbacks run in another thread are not the loop's."""
        if fired:
            self.deferred_fired(d, is_errback)
        if _get_ident() != self.reactor_thread:
            return
        try:
            site, code = self._site_and_code("deferred_callback_begin", f)
            did = d._trace_id
            if type(did) is not int:
                did = self._new_trace_id(d)
            errback = bool(is_errback)
            t = _now()
            self._end_deferred_callback(did, t, errback)
            stack = self._stack
            stack.append((next(self._serials), t, "deferred", code, site, len(stack), did, errback))
        except Exception as exc:  # noqa: BLE001
            self._failed("deferred_callback_begin", exc)

    def deferred_callback_end(self, d: Any, result_is_failure: bool, fired: bool = False) -> None:
        if fired:
            self.deferred_fired(d, result_is_failure)
        if not self._stack or _get_ident() != self.reactor_thread:
            return
        try:
            did = d._trace_id
            if type(did) is not int:
                did = self._new_trace_id(d)
            self._end_deferred_callback(did, _now(), bool(result_is_failure))
        except Exception as exc:  # noqa: BLE001
            self._failed("deferred_callback_end", exc)

    def deferred_timer(self, failure: type, deferred: type, settled: Callable[[Any, Any], Any],
                       failed: Callable[[Any, BaseException], Any]) -> DeferredTimer:
        """What times Deferred callbacks for this probe (:class:`DeferredTimer`)."""
        return DeferredTimer(self, failure, deferred, settled, failed)

    # -- for the delegate and the watchdog ----------------------------------------------------
    def top(self) -> tuple | None:
        """``(serial, start_ns, kind, code, site, depth)`` of the innermost call in progress on
        the reactor thread, or None (any thread may ask)."""
        innermost = self._stack[-1:]  # one step: the stack may change meanwhile
        return innermost[0][:6] if innermost else None

    def close_calls(self) -> None:
        """Recording stops inside loop calls (a pytest-twisted test, SIGTERM in a blocking
        callback of an asyncio program): each is written as ending now, innermost first, so
        its stall is kept.  Only on the reactor thread, whose stack this is."""
        if _get_ident() != self.reactor_thread:
            return
        t = _now()
        stack = self._stack
        while stack:
            _serial, start, kind, _code, site, depth, x, y = stack.pop()
            if kind == "deferred":
                self._add(("dcall", t - self.t0, x, site, t - start, depth, y, False))
            else:
                self._add(("call", t - self.t0, kind, site, t - start, depth, x, y, None))

    def watch_fd(self, obj: Any, fd: int) -> None:
        """A read or write call whose source is ``obj`` is of ``fd`` until ``unwatch_fd``."""
        self._fds[id(obj)] = fd

    def unwatch_fd(self, obj: Any) -> None:
        """Forget the fd of ``obj`` (nothing when it has none)."""
        self._fds.pop(id(obj), None)

    def fd_of(self, obj: Any) -> int | None:
        """The fd watched for ``obj``."""
        return self._fds.get(id(obj))

    @property
    def fds_watched(self) -> int:
        """How many objects have an fd watched."""
        return len(self._fds)

    def deferred_site(self, did: int) -> int:
        """Where Deferred ``did`` was created, if it is recent enough to be remembered, else 0."""
        known, site = self._dsites[did & (DEFERRED_SITES - 1)]
        return site if did > 0 and known == did else 0

    def deferred_id(self, d: Any) -> int:
        """``d``'s Deferred id, giving it one if it was created before tracing."""
        did = d._trace_id
        return did if type(did) is int else self._new_trace_id(d)


class DeferredTimer:
    """``timer(d, f, is_errback)``: ``f`` timed as a callback (errback) of Deferred ``d``,
    between ``deferred_callback_begin`` and ``deferred_callback_end``, as tracer._native's
    DeferredTimer does it.  ``failure`` and ``deferred`` are Twisted's Failure and Deferred
    classes; ``failed(d, exc)`` is called when a callback raised ``exc``, ``settled(d,
    result)`` when it returned an instance of either (its return value is the callback's);
    both end the callback themselves.

    ``codes``: the code of the function a timed callback runs in, a frame between Twisted
    and the callback that the C probe does not have.
    """

    def __init__(self, probe: Probe, failure: type, deferred: type,
                 settled: Callable[[Any, Any], Any],
                 failed: Callable[[Any, BaseException], Any]) -> None:
        begin, end = probe.deferred_callback_begin, probe.deferred_callback_end
        plain: set[type] = set()  # result types seen that are neither Failure nor Deferred

        def timed(d: Any, f: Callable[..., Any], is_errback: bool) -> Callable[..., Any]:
            def run(*args: Any, **kw: Any) -> Any:
                begin(d, f, is_errback)
                try:
                    r = f(*args, **kw)
                except BaseException as exc:
                    failed(d, exc)
                    raise
                kind = type(r)
                if kind not in plain:
                    if issubclass(kind, failure) or issubclass(kind, deferred):
                        return settled(d, r)
                    plain.add(kind)
                end(d, False)
                return r
            return run

        self._timed = timed
        self._run_code = timed(None, print, False).__code__
        self.codes = frozenset({self._run_code})

    def __call__(self, d: Any, f: Callable[..., Any], is_errback: bool) -> Callable[..., Any]:
        return self._timed(d, f, bool(is_errback))

    def callback_of(self, f: Any) -> Any:
        """The program's callback that ``f`` times, if ``f`` is a timed callback, else None."""
        if getattr(f, "__code__", None) is not self._run_code:
            return None
        return f.__closure__[f.__code__.co_freevars.index("f")].cell_contents
