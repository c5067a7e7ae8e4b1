"""Runs one copied Twisted test module under trial and writes what happened.

Started by ``bench/conformance.py`` in a subprocess per module::

    python bench/conformance_runner.py --mode loopscope|twisted MODULE OUT.jsonl

It writes one JSON line when each test starts and one when it ends
(``{"id", "key", "outcome", "errors", "reason"}``), flushed at once, so a
test that hangs until the parent's time limit is still named.

In ``loopscope`` mode trial is Twisted's, but the things trial takes from
``twisted.internet`` are made to be loopscope's, or to understand them:

* loopscope's default reactor is installed as Twisted's global reactor, so
  trial spins it while a test waits and cleans it between tests;
* a loopscope Deferred returned by a test (or setUp, tearDown, a cleanup) is
  waited for, and its Failure reported, as trial does with its own;
* ``successResultOf`` / ``failureResultOf`` / ``assertNoResult`` accept
  loopscope Deferreds and recognise loopscope Failures;
* errors loopscope logs (``reactor.log``) reach Twisted's log, where trial
  turns them into test errors, as it does for Twisted's own;
* ReactorBuilder builds ``reactor.Reactor`` (declared to provide the
  interfaces in ``conformance_cases.DECLARED_INTERFACES``).

In ``twisted`` mode nothing is changed except that ReactorBuilder builds only
the epoll reactor, so both modes run each reactor test once.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import traceback
import types
from typing import Any, TextIO

import conformance_cases as cases
from conformance_shim import MissingAPI

REACTOR_SUFFIXES = ("_ReactorTests", "_EPollReactorTests")


# -- loopscope mode: teach trial loopscope's Deferred and Failure -------------------

def install_loopscope() -> None:
    """Everything the module docstring lists for ``loopscope`` mode."""
    import reactor as loopscope
    from twisted.internet.main import installReactor

    installReactor(loopscope.reactor)
    _declare_interfaces(loopscope.Reactor)
    _bridge_trial()
    _bridge_janitor()
    _bridge_log()
    _build_loopscope_reactors()


def _declare_interfaces(reactor_class: type) -> None:
    from twisted.internet import interfaces
    from zope.interface import classImplements

    for name in cases.DECLARED_INTERFACES:
        classImplements(reactor_class, getattr(interfaces, name))


def twisted_failure(failure: Any) -> Any:
    """A Twisted Failure for a loopscope one (what trial's reporters print)."""
    from twisted.python.failure import Failure

    return Failure(failure.value, failure.type, failure.tb)


def to_twisted(result: Any) -> Any:
    """A loopscope Deferred (or coroutine) as a Twisted Deferred with the same
    outcome; anything else unchanged."""
    from twisted.internet import defer as tdefer

    from reactor import defer
    from reactor.failure import Failure

    if inspect.iscoroutine(result):
        result = defer.Deferred.fromCoroutine(result)
    if not isinstance(result, defer.Deferred):
        return result
    waiting = tdefer.Deferred(lambda _: result.cancel())

    def settle(outcome: Any) -> None:
        if isinstance(outcome, Failure):
            waiting.errback(twisted_failure(outcome))
        else:
            waiting.callback(outcome)

    result.addBoth(settle)
    return waiting


def _bridge_trial() -> None:
    from twisted.internet import defer as tdefer
    from twisted.internet import utils
    from twisted.python.failure import Failure as TwistedFailure
    from twisted.trial import _synctest

    from reactor import defer
    from reactor.failure import Failure

    run_suppressed = utils.runWithWarningsSuppressed

    def run_and_bridge(suppressed: Any, f: Any, *a: Any, **kw: Any) -> Any:
        return to_twisted(run_suppressed(suppressed, f, *a, **kw))

    utils.runWithWarningsSuppressed = run_and_bridge

    class _EitherFailure(type(TwistedFailure)):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, (TwistedFailure, Failure))

    class AnyFailure(TwistedFailure, metaclass=_EitherFailure):
        """Twisted's Failure, for which a loopscope Failure is an instance too."""

    def ensure(d: Any) -> Any:
        if isinstance(d, defer.Deferred):
            return d
        if inspect.iscoroutine(d):
            return defer.Deferred.fromCoroutine(d)
        return tdefer.ensureDeferred(d)

    _synctest.ensureDeferred = ensure
    _synctest.failure = types.SimpleNamespace(Failure=AnyFailure)


def _bridge_janitor() -> None:
    """Trial stops a reactor's thread pool between test classes through
    Twisted's private ``threadpool``/``_stopThreadPool``; loopscope's is
    ``_stop_thread_pool``."""
    from twisted.trial import util

    def clean_threads(self: Any) -> None:
        reactor = self._getReactor()
        stop = getattr(reactor, "_stop_thread_pool", None)
        if stop is not None:
            stop()

    util._Janitor._cleanThreads = clean_threads


def _bridge_log() -> None:
    try:
        from reactor import log
    except ImportError:
        return  # an older loopscope: its errors reach stdlib logging only
    from twisted.python import log as tlog

    def forward(event: dict) -> None:
        # The Failure goes as it is: trial only calls what both Failures have
        # (check, getTraceback...), and a test's flushLoggedErrors() then
        # gives back the very Failure that loopscope logged.
        event = dict(event)
        tlog.msg(*event.pop("message", ()), **event)

    log.addObserver(forward)


def _build_loopscope_reactors() -> None:
    from twisted.internet.test import reactormixins

    builder = reactormixins.ReactorBuilder
    builder._reactors = ["reactor.Reactor"]

    def unbuild(self: Any, reactor: Any) -> None:
        """What Twisted's _unbuildReactor does, with loopscope's own names."""
        reactor._disconnect_all()
        for call in reactor.getDelayedCalls():
            call.cancel()
        reactor._stop_thread_pool()
        reactor._restore_signal_handlers()
        reactor._close()
        from twisted.internet import reactor as global_reactor

        global_reactor.__dict__ = reactor._originalReactorDict
        global_reactor.__class__ = reactor._originalReactorClass

    builder._unbuildReactor = unbuild

    run_reactor = builder.runReactor
    running: list[Any] = []

    def run_watched(self: Any, reactor: Any, timeout: Any = None) -> None:
        running.append(reactor)
        try:
            run_reactor(self, reactor, timeout)
        finally:
            running.remove(reactor)

    def stop_on_missing_api(event: dict) -> None:
        """A reactor test whose callback hit a missing name would otherwise
        wait out its whole time limit; end its run now (the logged error
        still fails the test, and names the missing API)."""
        failure = event.get("failure")
        if running and failure is not None and failure.check(MissingAPI):
            running[-1].crash()

    from twisted.python import log as twisted_log

    builder.runReactor = run_watched
    # Twisted's log hears both: Twisted helpers log there, loopscope's log is
    # forwarded there (_bridge_log).
    twisted_log.addObserver(stop_on_missing_api)


def install_twisted() -> None:
    from twisted.internet.test import reactormixins

    reactormixins.ReactorBuilder._reactors = ["twisted.internet.epollreactor.EPollReactor"]


# -- the run ------------------------------------------------------------------

def test_key(test: Any) -> str:
    """``Class.method`` from the test's id, a ReactorBuilder class named
    without its reactor suffix; a module that did not import is its own key."""
    parts = test.id().split(".")
    if len(parts) < 4:
        return test.id()
    cls, method = parts[-2], parts[-1]
    for suffix in REACTOR_SUFFIXES:
        if cls.endswith(suffix):
            cls = cls[: -len(suffix)]
    return f"{cls}.{method}"


def _mark_not_applicable(suite: Any, module: str) -> None:
    from fnmatch import fnmatchcase

    from twisted.trial.runner import _iterateTests

    for test in _iterateTests(suite):
        key = test_key(test)
        for (mod, pattern), reason in cases.NOT_APPLICABLE.items():
            if mod == module and fnmatchcase(key, pattern):
                test.skip = "not-applicable: " + reason
                break


def _is_ours(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    elif isinstance(obj, type):
        name = obj.__module__
    else:
        name = type(obj).__module__
    return name == "reactor" or name.startswith("reactor.")


def _raised_in_reactor(tb: Any) -> bool:
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    path = last.tb_frame.f_code.co_filename.replace(os.sep, "/")
    return "/reactor/" in path


def missing_name(exc: BaseException, tb: Any = None) -> str | None:
    """The loopscope name whose absence ``exc`` reports, else None.

    A name that test code (or a Twisted helper) asked of a loopscope object
    and did not find; an AttributeError raised inside ``reactor/`` itself is
    a bug there, not a missing name.
    """
    if isinstance(exc, MissingAPI):
        return exc.qualname
    if isinstance(exc, AttributeError) and not _raised_in_reactor(tb or exc.__traceback__):
        obj = getattr(exc, "obj", None)
        if obj is not None and _is_ours(obj):
            owner = obj.__name__ if isinstance(obj, (types.ModuleType, type)) else type(obj).__qualname__
            return f"{owner}.{exc.name}"
    if isinstance(exc, ImportError) and (exc.name or "").startswith("reactor"):
        return exc.name
    if isinstance(exc, TypeError) and not _raised_in_reactor(tb or exc.__traceback__):
        keyword = _missing_keyword(str(exc))
        if keyword is not None:
            return keyword
    sub = getattr(exc, "subFailure", None)  # FirstError
    if sub is not None:
        return missing_name(sub.value, sub.tb)
    return None


def _missing_keyword(message: str) -> str | None:
    """``Reactor.listenUNIX(mode=)`` for "Reactor.listenUNIX() got an
    unexpected keyword argument 'mode'" when the callable is loopscope's."""
    found = re.match(r"(\w+)\.(\w+)\(\) got an unexpected keyword argument '(\w+)'", message)
    if found is None:
        return None
    owner, method, keyword = found.groups()
    import reactor.base
    import reactor.tcp
    import reactor.unix

    for module in (reactor.base, reactor.tcp, reactor.unix):
        if isinstance(getattr(module, owner, None), type):
            return f"{owner}.{method}({keyword}=)"
    return None


def describe_error(error: Any) -> dict:
    """The JSON form of one error trial reported (a Failure or exc_info)."""
    if isinstance(error, tuple):
        exc_type, value, tb = error
    else:
        exc_type, value, tb = error.type, error.value, error.getTracebackObject()
    try:
        text = "".join(traceback.format_exception(exc_type, value, tb))
    except Exception:  # noqa: BLE001 - a report must not fail
        text = repr(value)
    lines = text.rstrip().splitlines()
    missing = missing_name(value, tb) if isinstance(value, BaseException) else None
    if missing is None and ("MissingAPI" in text or "_MissingMeta" in text):
        # A placeholder met code that does not look at it as a name: an
        # assertRaises that got MissingAPI, or a placeholder used as a number.
        found = re.search(r"loopscope has no ([\w.]+)", text)
        missing = found.group(1) if found else "a name used as a value"
    return {
        "type": getattr(exc_type, "__qualname__", str(exc_type)),
        "message": str(value)[:500],
        "missing": missing,
        "traceback": "\n".join(lines[-14:]),
    }


def as_reportable(error: Any) -> Any:
    """What trial's reporter takes: an exc_info tuple or a Twisted Failure.
    An error loopscope logged and nobody flushed arrives as loopscope's
    Failure, which the reporter would refuse (ending the whole run)."""
    from twisted.python.failure import Failure as TwistedFailure

    if isinstance(error, (tuple, TwistedFailure)):
        return error
    return twisted_failure(error)


def make_result(out: TextIO) -> Any:
    from twisted.trial import reporter

    class Recorder(reporter.TestResult):
        """Writes each test's outcome as a JSON line."""

        def startTest(self, test: Any) -> None:
            super().startTest(test)
            self._current = {"id": test.id(), "key": test_key(test), "outcome": "pass",
                             "errors": [], "reason": None}
            self._write({"start": test.id(), "key": test_key(test)})

        def _set(self, outcome: str, error: Any = None, reason: str | None = None) -> None:
            current = self._current
            # A test may be reported several times (an error, then a dirty
            # reactor): the worst outcome wins.
            rank = ["pass", "xfail", "skip", "xpass", "fail", "error"]
            if rank.index(outcome) >= rank.index(current["outcome"]):
                current["outcome"] = outcome
            if error is not None:
                current["errors"].append(describe_error(error))
            if reason is not None:
                current["reason"] = str(reason)

        def addError(self, test: Any, error: Any) -> None:
            super().addError(test, as_reportable(error))
            self._set("error", error)

        def addFailure(self, test: Any, fail: Any) -> None:
            super().addFailure(test, as_reportable(fail))
            self._set("fail", fail)

        def addSkip(self, test: Any, reason: Any) -> None:
            super().addSkip(test, reason)
            self._set("skip", reason=reason)

        def addExpectedFailure(self, test: Any, error: Any, todo: Any = None) -> None:
            super().addExpectedFailure(test, error, todo)
            self._set("xfail")

        def addUnexpectedSuccess(self, test: Any, todo: Any = None) -> None:
            super().addUnexpectedSuccess(test, todo)
            self._set("xpass")

        def stopTest(self, test: Any) -> None:
            super().stopTest(test)
            self._write(self._current)

        def _write(self, record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

    return Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["loopscope", "twisted"], required=True)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="trial's time limit for one test, seconds")
    parser.add_argument("module", help="short name of the copy, e.g. test_defer")
    parser.add_argument("out", help="JSON-lines file to write")
    args = parser.parse_args()
    if args.mode == "loopscope":
        install_loopscope()
    else:
        install_twisted()

    from twisted.internet.test import reactormixins
    from twisted.trial import runner, util

    util.DEFAULT_TIMEOUT_DURATION = args.timeout
    reactormixins.DEFAULT_TIMEOUT_DURATION = args.timeout
    with open(args.out, "w", encoding="utf-8") as out:
        suite = runner.TestLoader().loadByName(f"{cases.PACKAGE}.{args.module}", recurse=True)
        _mark_not_applicable(suite, args.module)
        trial = runner.TrialRunner(lambda *a: make_result(out)(),
                                   workingDirectory=os.path.join(os.getcwd(), "_trial_temp"))
        trial.run(suite)
    sys.stdout.flush()
    os._exit(0)  # do not wait for threads a broken test left running


if __name__ == "__main__":
    main()
