"""The pytest plugin: trace each test's event loop, and fail a test whose loop blocked.

    pytest --loopscope                          # trace every test; keep failed tests' traces
    pytest --loopscope --loopscope-fail-over 100
    @pytest.mark.loopscope(fail_over=100)       # this test, even without --loopscope

Registered through the ``pytest11`` entry point, so pytest loads it in every project where
loopscope is installed: at that point it only adds its options and marker.  Nothing of the
tracer is imported, and no hook does any work, unless ``--loopscope`` is given or a test
carries the marker.

A traced test runs with the tracer recording from its setup to the end of its call, with
every adapter installed (loopscope's reactor, asyncio, the real Twisted reactor), so the same
plugin serves plain, pytest-asyncio and pytest-twisted tests.  A failed test's trace is kept
in the traces folder (printed at the end of the run) for ``loopscope replay``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Generator

import pytest

if TYPE_CHECKING:
    from tracer.session import Tracer

#: Recording threshold when no fail-over limit applies: the CLI's default.
DEFAULT_THRESHOLD_MS = 50.0
#: Longest traced file name made of a test's node id (file systems allow 255 bytes).
MAX_NAME = 150

_traces_key = pytest.StashKey[list[str]]()
_session_key = pytest.StashKey["Tracer"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loopscope", "loopscope: find callbacks that block the event loop")
    group.addoption("--loopscope", action="store_true",
                    help="trace each test's event loop with loopscope")
    group.addoption("--loopscope-fail-over", type=float, metavar="MS", default=None,
                    help="fail a test whose loop was blocked by one callback for longer than MS")
    group.addoption("--loopscope-dir", metavar="DIR", default=".loopscope-traces",
                    help="where the traces of failed tests are kept (default .loopscope-traces)")
    group.addoption("--loopscope-keep-all", action="store_true",
                    help="keep the trace of every traced test, not only of failed ones")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "loopscope(fail_over=MS): trace this test's event loop with loopscope and "
                   "fail it when one callback blocked the loop for longer than MS")
    config.stash[_traces_key] = []


def _limit(item: pytest.Item) -> tuple[bool, float | None]:
    """Whether ``item`` is traced, and its fail-over limit in ms (None: no limit)."""
    marker = item.get_closest_marker("loopscope")
    enabled = item.config.getoption("--loopscope") or marker is not None
    limit = item.config.getoption("--loopscope-fail-over")
    if marker is not None and "fail_over" in marker.kwargs:
        limit = float(marker.kwargs["fail_over"])
    return enabled, limit


def _trace_path(item: pytest.Item) -> Path:
    folder = Path(item.config.getoption("--loopscope-dir"))
    if not folder.is_absolute():
        folder = item.config.rootpath / folder
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")[:MAX_NAME]
    return folder / f"{name}.jsonl"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    enabled, limit = _limit(item)
    if enabled:
        import tracer
        from tracer import adapters
        path = _trace_path(item)
        if path.exists():
            path.unlink()  # a trace left from an earlier run of this test
        threshold = min(limit, DEFAULT_THRESHOLD_MS) if limit else DEFAULT_THRESHOLD_MS
        session = tracer.start(str(path), threshold)
        adapters.install(session)
        item.stash[_session_key] = session
    return (yield)


def _stop(item: pytest.Item) -> Tracer | None:
    session = item.stash.get(_session_key, None)
    if session is None:
        return None
    del item.stash[_session_key]
    import tracer
    from tracer import adapters
    adapters.uninstall()
    tracer.stop()
    return session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if _session_key not in item.stash:
        return (yield)
    try:
        result = yield
    finally:
        session = _stop(item)
    _, limit = _limit(item)
    if session is not None and limit is not None:
        message = blocked_over(session.path, limit)
        if message is not None:
            pytest.fail(message, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "setup" and report.failed:
        _stop(item)  # the call never runs: stop recording here
    if report.when in ("setup", "call") and (report.failed or report.when == "call"):
        path = _trace_path(item) if _limit(item)[0] else None
        if path is not None and path.exists():
            keep = report.failed or item.config.getoption("--loopscope-keep-all")
            if keep:
                item.config.stash[_traces_key].append(str(path))
            else:
                path.unlink()
    return report


def blocked_over(trace: str, limit_ms: float) -> str | None:
    """Why the test fails, or None: its longest stall, named as the dashboard names it (the
    user's code it was stuck in, then the callback the loop ran when that is another one, a
    Deferred's ``callback`` that a ``deferLater`` timer fired), with the stuck line and stack."""
    from tracer.names import kind_words, short_path
    from tracer.summary import place_text, printable, runs_itself, summarize

    def frame_text(frame: dict) -> str:
        """``file:line in function``: a file of the project relative to the working directory
        (an editor opens it from pytest's output), any other from its package."""
        file = _short(frame["file"])
        if file == frame["file"]:
            file = short_path(file)
        return f"{printable(file)}:{frame['line']} in {printable(frame['func'])}"

    summary = summarize(trace, threshold_ms=limit_ms, warn=lambda message: None)
    stalls = summary["stalls"]
    if not stalls:
        return None
    worst = stalls[0]
    kind = kind_words(str(worst["kind"]), getattr(summary, "runtime", "reactor"))
    lines = [f"loopscope: the event loop was blocked for {worst['dur_ms']:.1f} ms "
             f"(over the {limit_ms:g} ms limit) in {place_text(worst, callback=False)}"]
    if runs_itself(worst):
        lines[0] += f", {kind}"
    else:
        lines.append(f"  the loop ran {place_text(worst['callback'])}, {kind}")
    stack = worst["stack"]
    if stack:
        stuck = stack[-1]
        lines.append(f"  stuck at {frame_text(stuck)}")
        lines.append("  stack, innermost last:")
        lines += [f"    {frame_text(f)}" for f in stack[-12:]]
    else:
        lines.append("  no stack sample: the watchdog did not see it running")
    others = len(stalls) - 1
    if others:
        lines.append(f"  and {others} more stall{'s' if others > 1 else ''} over the limit")
    shown = _short(trace)
    lines.append(f"  trace: {shown}  (open it with: loopscope replay {shown})")
    return "\n".join(lines)


def _short(path: str) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = terminalreporter.config.stash.get(_traces_key, [])
    if kept:
        terminalreporter.section("loopscope traces")
        folder = os.path.dirname(kept[0])
        terminalreporter.write_line(f"{len(kept)} trace{'s' if len(kept) > 1 else ''} kept in "
                                    f"{folder} (open one with: loopscope replay TRACE):")
        for path in kept:
            terminalreporter.write_line(f"  {path}")
