"""The one place where the reactor and its Deferreds say what they are doing.

Tracing is process-wide, so there is a single module-level ``probe``.  Every
instrumentation point in ``reactor`` is written as::

    probe = _instrument.probe
    if probe is not None:
        probe.timer_scheduled(call)

so that with no probe attached (the default) the cost is one global load and one
identity check.  ``reactor`` never imports ``tracer``: the tracer subclasses
:class:`Probe` and calls :func:`install`.

Hook methods are called on the reactor thread unless their docstring says
otherwise.  A probe must never raise and never block; it records and returns.
"""

from __future__ import annotations

from collections.abc import Callable

# As typing.TYPE_CHECKING (type checkers take it as True), without importing typing: the tracer
# imports this module at the start of every traced process.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

probe: Probe | None = None


def install(new_probe: Probe) -> None:
    """Attach ``new_probe`` to every reactor and Deferred in this process."""
    global probe
    probe = new_probe


def uninstall() -> None:
    """Detach the probe; instrumentation points go back to costing one check."""
    global probe
    probe = None


class Probe:
    """Every instrumentation point, as a method that does nothing (but for the
    firing that deferred_callback_begin and _end may carry: they pass it on to
    deferred_fired).

    Objects passed in (Deferreds, DelayedCalls, transports) carry a
    ``_trace_id`` attribute initialised to ``None`` that the probe may set to
    give them a stable number; nothing else in ``reactor`` reads it.
    """

    # -- the loop -----------------------------------------------------------
    def loop_started(self, reactor: Any) -> None:
        """``reactor.run()`` entered its loop."""

    def loop_stopped(self, reactor: Any) -> None:
        """The loop has exited (after shutdown triggers ran)."""

    def poll_begin(self, timeout: float | None) -> None:
        """The loop is about to wait in the selector (idle time starts)."""

    def poll_end(self, ready: list[tuple[Any, int]]) -> None:
        """The selector returned: ``ready`` is what ``select()`` gave,
        ``[(key, mask), ...]`` where ``key.fd`` is the descriptor and mask is
        ``selectors.EVENT_READ | selectors.EVENT_WRITE`` bits (passed as is:
        building another list would cost every iteration).  One
        poll_begin/poll_end pair is one loop iteration."""

    # -- user code run by the loop -----------------------------------------
    def call_begin(self, kind: str, f: Callable[..., Any], source: Any) -> None:
        """The loop is about to run user code ``f``.

        ``kind`` is one of ``"timer"`` (a DelayedCall; ``source`` is it, so
        ``source.time`` is its due time), ``"read"`` / ``"write"`` (``source``
        is the descriptor; for our own TCP transports ``f`` is the protocol
        method, e.g. ``Echo.dataReceived``, not the transport's ``doRead``),
        ``"thread"`` (a callFromThread hand-back), ``"trigger"`` (a system
        event trigger; ``source`` is ``(phase, event)``).  Calls nest: a
        Deferred callback fired inside dataReceived is reported through
        :meth:`deferred_callback_begin` while this call is still open.
        """

    def call_end(self, exc: BaseException | None) -> None:
        """The innermost open :meth:`call_begin` returned; ``exc`` is what
        escaped it (the reactor logs it and goes on), else ``None``."""

    def run_call(self, kind: str, source: Any, f: Callable[..., Any],
                 args: tuple, kw: dict | None) -> Any:
        """Run ``f(*args, **kw)`` for the loop as one call of ``kind``:
        :meth:`call_begin`, the call, :meth:`call_end`; the result or the
        exception passes through.  The loop calls this rather than the two
        hooks, so that a probe written in C can do all three in one step."""
        self.call_begin(kind, f, source)
        try:
            result = f(*args, **(kw or {}))
        except BaseException as exc:
            self.call_end(exc)
            raise
        self.call_end(None)
        return result

    # -- timers ---------------------------------------------------------------
    def timer_scheduled(self, call: Any) -> None:
        """``callLater`` created ``call`` (a DelayedCall with ``func``,
        ``args``, ``time``).  Called from the caller's frame, so
        ``sys._getframe(2)`` is the scheduling site."""

    def timer_cancelled(self, call: Any) -> None:
        """``call.cancel()`` succeeded."""

    # -- descriptors and connections -------------------------------------------
    def descriptor_added(self, descriptor: Any, fd: int, mode: str) -> None:
        """addReader (``mode == "r"``) or addWriter (``"w"``) took effect."""

    def descriptor_removed(self, descriptor: Any, fd: int, mode: str) -> None:
        """removeReader/removeWriter (or an ending descriptor) took effect."""

    def connection_opened(self, transport: Any, fd: int, role: str,
                          host: Any, peer: Any) -> None:
        """A TCP/Unix connection was made; ``role`` is ``"server"`` or
        ``"client"``; host/peer are address objects with ``host``/``port``."""

    def connection_closed(self, transport: Any, fd: int, reason: Any,
                          bytes_in: int, bytes_out: int) -> None:
        """The connection ended; ``reason`` is the Failure given to
        connectionLost; byte counts are totals over its life."""

    # -- the thread pool (called from whichever thread says so) ---------------
    def thread_submitted(self, job: int, f: Callable[..., Any]) -> None:
        """callInThread queued job number ``job`` (reactor thread)."""

    def thread_started(self, job: int) -> None:
        """A pool thread took the job (pool thread)."""

    def thread_done(self, job: int, exc: BaseException | None) -> None:
        """The job's function returned or raised (pool thread)."""

    # -- Deferreds -------------------------------------------------------------
    def deferred_created(self, d: Any) -> None:
        """``Deferred()`` was constructed; ``sys._getframe(2)`` is the
        creating site (the frame that called ``Deferred()``)."""

    def deferred_callbacks_added(self, d: Any, callback: Any, errback: Any) -> None:
        """addCallbacks (or addCallback/addErrback/addBoth) appended a pair."""

    def deferred_fired(self, d: Any, is_failure: bool) -> None:
        """callback() or errback() was called on ``d``, and no pass over its callbacks
        follows at once (``d`` is paused, or the pass begins with a chainDeferred link).
        Otherwise the pass's first hook says so: ``fired`` below."""

    def deferred_callback_begin(self, d: Any, f: Callable[..., Any], is_errback: bool,
                                fired: bool = False) -> None:
        """A callback (or errback) of ``d`` is about to run.  If another
        callback of ``d`` ran before it in the same pass, that one has
        returned: this also ends it, and ``is_errback`` says whether the chain
        went on on the failure path after it.  (One hook per callback instead
        of two: a Deferred's callbacks are the tracer's most frequent event.)
        ``fired``: ``d`` was fired just now (a failure if ``is_errback``) and
        this is the first callback of the pass: the firing is this hook's to
        record, as :meth:`deferred_fired` would (in any thread).  Here it is
        passed on to :meth:`deferred_fired`."""
        if fired:
            self.deferred_fired(d, is_errback)

    def deferred_callback_end(self, d: Any, result_is_failure: bool, fired: bool = False) -> None:
        """A pass over ``d``'s callbacks is over (the chain stopped to wait,
        or ran out of callbacks): if callbacks ran in it, the last one has
        returned, and the chain continues on the failure path or not.  Called
        once per pass, whether or not a callback ran.  ``fired``: as for
        :meth:`deferred_callback_begin`, when no callback ran in the pass that
        the firing began."""
        if fired:
            self.deferred_fired(d, result_is_failure)

    def deferred_chained(self, outer: Any, inner: Any) -> None:
        """A callback of ``outer`` returned ``inner``; outer waits for it."""

    def deferred_cancelled(self, d: Any) -> None:
        """``d.cancel()`` was called while it was unfired or waiting."""

    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        """``d`` was garbage-collected with a Failure as its result.  May be
        called from any thread (wherever the collector ran)."""
