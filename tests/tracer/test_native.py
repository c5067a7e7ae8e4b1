"""The C probe's own guarantees (tracer/_native.c), beyond the contract both probes share
(tests/tracer/test_probes.py): its hooks keep their errors from the application, counted in
``Probe.hook_errors`` and handed to the Python half's ``_hook_failed``, and its row table
(``ROW_LAYOUTS``) says what its writer writes."""

from __future__ import annotations

import os
import selectors
import sys
import time
from pathlib import Path

import orjson
import pytest

import tracer
from reactor import defer
from reactor.base import DelayedCall
from tracer import backend

_native = pytest.importorskip("tracer._native", reason="the C extension is not built")

CALL_KINDS = {"timer", "read", "write", "thread", "trigger", "other", "deferred"}


class Delegate:
    """A Python half whose slow paths answer (site 7 for a callable, 8 for a line), or raise
    what ``fail`` maps their name to; it records what ``_hook_failed`` is told."""

    def __init__(self, **fail):
        self.fail = fail
        self.reported = []

    def _slow(self, name, answer):
        if name in self.fail:
            raise self.fail[name]
        return answer

    def _fn_site(self, f):
        return self._slow("_fn_site", (7, None))

    def _origin(self, frame):
        return self._slow("_origin", (8, False))

    def _call_failed(self, t, kind, site, dur, depth, x, lag, exc):
        self._slow("_call_failed", None)

    def _hook_failed(self, hook, exc):
        self.reported.append((hook, type(exc).__name__, str(exc)))
        self._slow("_hook_failed", None)


class NaiveDelegate(Delegate):
    """Slow paths that trust the application's objects: they read ``__qualname__`` and
    ``str()`` of what they are given, as careless Python code would."""

    def _fn_site(self, f):
        return len(f.__qualname__), None

    def _call_failed(self, t, kind, site, dur, depth, x, lag, exc):
        str(exc)


def probe_with(delegate, capacity=100):
    buffer = _native.Buffer(capacity)
    return _native.Probe(buffer, time.monotonic_ns(), delegate), buffer


def rows_of(buffer, tmp_path):
    path = tmp_path / "rows"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        buffer.drain(fd)
    finally:
        os.close(fd)
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def unraisable(monkeypatch):
    """What the probe reported through sys.unraisablehook (it must not: the app would see it)."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


class Unnamed:
    """A callable that is not a function: the C probe asks the slow path ``_fn_site``."""

    def __call__(self, *args):
        return "unnamed ran"


class NoQualname(Unnamed):
    """A callable whose name cannot be read."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name} here")


class UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


# -- errors in the slow paths ----------------------------------------------------------------

def test_a_failing_fn_site_is_counted_reported_and_the_event_recorded(tmp_path, unraisable):
    delegate = Delegate(_fn_site=LookupError("cannot name it"))
    probe, buffer = probe_with(delegate)
    d = defer.Deferred()
    assert probe.deferred_callbacks_added(d, Unnamed(), None) is None
    assert probe.hook_errors == 1
    assert delegate.reported == [("deferred_callbacks_added", "LookupError", "cannot name it")]
    [row] = rows_of(buffer, tmp_path)
    assert row[0] == "dadd" and row[2:] == [d._trace_id, 0, 0]  # an unknown site
    assert unraisable == []


def test_a_failing_origin_is_counted_and_the_deferred_gets_an_unknown_site(tmp_path, unraisable):
    delegate = Delegate(_origin=ValueError("no origin"))
    probe, buffer = probe_with(delegate)
    d = defer.Deferred()
    probe.deferred_created(d)
    assert probe.hook_errors == 1
    assert delegate.reported == [("deferred_created", "ValueError", "no origin")]
    [row] = rows_of(buffer, tmp_path)
    assert row[0] == "dnew" and row[2:] == [d._trace_id, 0]
    assert unraisable == []


def test_run_call_returns_the_result_when_fn_site_fails(tmp_path):
    delegate = Delegate(_fn_site=RuntimeError("slow path broke"))
    probe, buffer = probe_with(delegate)
    assert probe.run_call("other", None, Unnamed(), (), None) == "unnamed ran"
    assert probe.hook_errors == 1 and delegate.reported[0][0] == "run_call"
    [row] = rows_of(buffer, tmp_path)
    assert row[0] == "call" and row[3] == 0


def raise_it(exc):
    raise exc


def test_the_apps_exception_passes_run_call_unchanged_when_call_failed_fails(unraisable):
    delegate = Delegate(_call_failed=RuntimeError("cannot record it"))
    probe, _buffer = probe_with(delegate)
    mine = KeyError("the app's own")
    with pytest.raises(KeyError) as caught:
        probe.run_call("timer", None, raise_it, (mine,), None)
    assert caught.value is mine
    assert mine.__context__ is None and mine.__cause__ is None
    assert mine.__traceback__.tb_next.tb_frame.f_code is raise_it.__code__
    assert probe.hook_errors == 1
    assert delegate.reported == [("run_call", "RuntimeError", "cannot record it")]
    assert unraisable == []


def test_an_exception_whose_str_raises_passes_run_call_unchanged():
    probe, _buffer = probe_with(NaiveDelegate())
    mine = UnprintableError()
    with pytest.raises(UnprintableError) as caught:
        probe.run_call("read", None, raise_it, (mine,), None)
    assert caught.value is mine and mine.__context__ is None
    assert probe.hook_errors == 1
    assert probe.deferred_id(defer.Deferred()) > 0  # the probe goes on


def test_a_callable_whose_qualname_raises_runs_and_returns_its_result():
    delegate = NaiveDelegate()
    probe, _buffer = probe_with(delegate)
    assert probe.run_call("timer", None, NoQualname(), (), None) == "unnamed ran"
    assert probe.hook_errors == 1
    assert delegate.reported == [("run_call", "RuntimeError", "no __qualname__ here")]


def test_a_failing_hook_failed_is_only_counted(unraisable):
    delegate = Delegate(_fn_site=LookupError("a"), _hook_failed=RuntimeError("b"))
    probe, _buffer = probe_with(delegate)
    assert probe.run_call("other", None, Unnamed(), (), None) == "unnamed ran"
    assert probe.hook_errors == 1 and len(delegate.reported) == 1
    assert unraisable == []


def test_a_delegate_without_hook_failed_is_counted_only(unraisable):
    class Bare:
        def _fn_site(self, f):
            raise LookupError("no site")

    probe, _buffer = probe_with(Bare())
    assert probe.run_call("other", None, Unnamed(), (), None) == "unnamed ran"
    assert probe.hook_errors == 1
    with pytest.raises(AttributeError):
        probe.hook_errors = 0  # the count is the probe's
    assert unraisable == []


def test_a_slow_path_answer_of_the_wrong_shape_is_a_hook_error(tmp_path):
    class Odd(Delegate):
        def _fn_site(self, f):
            return "not a pair"

    delegate = Odd()
    probe, buffer = probe_with(delegate)
    probe.deferred_callbacks_added(defer.Deferred(), Unnamed(), Unnamed())
    assert probe.hook_errors == 2
    assert [r[:2] for r in delegate.reported] == [("deferred_callbacks_added", "TypeError")] * 2
    assert rows_of(buffer, tmp_path)[0][3:] == [0, 0]


# -- errors reading the application's objects ----------------------------------------------------

class Guarded:
    """Something the probe is handed whose ``_trace_id`` cannot be read or set."""

    @property
    def _trace_id(self):
        raise ValueError("no id")

    @_trace_id.setter
    def _trace_id(self, value):
        raise ValueError("no id either")


def test_an_attribute_that_raises_is_a_hook_error_and_the_event_is_still_recorded(tmp_path):
    delegate = Delegate()
    probe, buffer = probe_with(delegate)
    probe.deferred_fired(Guarded(), False)
    assert probe.hook_errors == 2  # reading the id, then giving it one
    assert delegate.reported == [("deferred_fired", "ValueError", "no id"),
                                 ("deferred_fired", "ValueError", "no id either")]
    [row] = rows_of(buffer, tmp_path)
    assert row[0] == "dfire" and row[3] is False


def test_a_missing_attribute_is_no_error(tmp_path):
    class Plain:  # no _trace_id at all: it gets one
        pass

    probe, buffer = probe_with(Delegate())
    thing = Plain()
    probe.deferred_fired(thing, True)
    assert probe.hook_errors == 0 and thing._trace_id == rows_of(buffer, tmp_path)[0][2]


def test_a_flag_whose_truth_raises_is_false_and_a_hook_error(tmp_path):
    class Undecided:
        def __bool__(self):
            raise ArithmeticError("neither")

    probe, buffer = probe_with(Delegate())
    probe.deferred_fired(defer.Deferred(), Undecided())
    assert probe.hook_errors == 1
    assert rows_of(buffer, tmp_path)[0][3] is False


def test_a_due_time_that_is_not_a_number_is_a_hook_error(tmp_path):
    call = DelayedCall(None, 0.0, print, (), {})
    call.time = "soon"
    delegate = Delegate()
    probe, buffer = probe_with(delegate)
    probe.timer_scheduled(call)
    assert probe.hook_errors == 1 and delegate.reported[0][:2] == ("timer_scheduled", "TypeError")
    [row] = rows_of(buffer, tmp_path)
    assert row[0] == "timer" and row[2] == call._trace_id and row[5] is None


# -- what is the application's, not the hook's -----------------------------------------------------

def test_a_keyboard_interrupt_in_a_slow_path_reaches_the_app():
    probe, _buffer = probe_with(Delegate(_fn_site=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        probe.deferred_callbacks_added(defer.Deferred(), Unnamed(), None)
    assert probe.hook_errors == 0
    assert probe.deferred_callbacks_added(defer.Deferred(), None, None) is None  # raised once


def test_a_keyboard_interrupt_while_recording_a_failed_call_comes_first_with_the_apps_error():
    probe, _buffer = probe_with(Delegate(_call_failed=KeyboardInterrupt()))
    mine = KeyError("the app's own")
    with pytest.raises(KeyboardInterrupt) as caught:
        probe.run_call("timer", None, raise_it, (mine,), None)
    assert caught.value.__context__ is mine  # as if raised in an except block
    assert probe.hook_errors == 0


# -- through tracer.start, with the real Python half -----------------------------------------------

def test_a_traced_app_gets_its_results_when_naming_its_callables_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(backend.ENV, "c")
    recording = tracer.start(str(tmp_path / "t.jsonl"))
    try:
        seen = []
        d = defer.Deferred()
        d.addCallback(NoQualname())
        d.addCallback(seen.append)
        d.callback(None)
        native = recording.probe.native
        assert type(native) is _native.Probe
        assert seen == ["unnamed ran"] and native.hook_errors == 2  # added, then run
    finally:
        tracer.stop()
    events = [orjson.loads(line) for line in Path(tmp_path / "t.jsonl").read_bytes().splitlines()]
    errors = [e for e in events if type(e) is dict and e.get("ev") == "hookerr"]
    assert [(e["hook"], e["exc"]) for e in errors] == [
        ("deferred_callbacks_added", "RuntimeError"), ("deferred_callback_begin", "RuntimeError")]
    assert events[-1]["hook_errors"] == 2


# -- the row table -------------------------------------------------------------------------------

def is_field(value, letter):
    if letter == "i":
        return value is None or type(value) is int
    if letter == "b":
        return type(value) is bool
    return letter == "k" and value in CALL_KINDS


def test_row_layouts_say_what_the_writer_writes(tmp_path):
    probe, buffer = probe_with(Delegate())
    d = defer.Deferred()
    probe.deferred_created(d)
    probe.deferred_callbacks_added(d, Unnamed(), None)
    probe.deferred_callback_begin(d, Unnamed(), False)
    probe.deferred_callback_end(d, True)
    probe.deferred_fired(d, False)
    probe.timer_scheduled(DelayedCall(None, time.monotonic(), print, (), {}))
    probe.run_call("read", None, print, (), None)
    probe.poll_begin(None)
    key = selectors.SelectorKey(None, 5, selectors.EVENT_READ, None)
    probe.poll_end([(key, selectors.EVENT_READ)])
    rows = rows_of(buffer, tmp_path)
    assert {row[0] for row in rows} == set(_native.ROW_LAYOUTS)
    for kind, *fields in rows:
        types = _native.ROW_LAYOUTS[kind]
        if kind == "call":  # a call row ends with its exc: null (a raised call is an object)
            assert fields[-1] is None
            fields = fields[:-1]
        if kind == "poll":  # then the ready (fd, mask) pairs
            assert fields[len(types):] == [5, selectors.EVENT_READ]
            fields = fields[:len(types)]
        assert len(fields) == len(types), kind
        assert all(is_field(v, letter) for v, letter in zip(fields, types)), (kind, fields)


def test_the_rare_hooks_are_the_python_halfs_and_the_probe_has_no_instance_dict():
    """Every hook of the contract is on the C probe; the rare ones call the Python half's.
    With no instance dictionary, CPython 3.12+ specializes the hot hooks' lookups."""
    from reactor import _instrument

    told = []

    class Half(Delegate):
        def __getattr__(self, name):
            return lambda *args: told.append((name, args))

    probe, _buffer = probe_with(Half())
    hooks = [name for name in vars(_instrument.Probe) if not name.startswith("_")]
    assert all(hasattr(probe, name) for name in hooks)
    probe.loop_started("reactor")
    probe.connection_closed("transport", 7, "reason", 10, 20)
    assert told == [("loop_started", ("reactor",)),
                    ("connection_closed", ("transport", 7, "reason", 10, 20))]
    assert not hasattr(probe, "__dict__")
