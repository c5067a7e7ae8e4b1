"""The summary index (tracer/index.py): a finished trace is summarised once, and its entry is
used only while the trace is the one it was made from (size, modification time, threshold)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest

from tracer import index
from tracer.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "traces" / "blocking_server.jsonl"


@pytest.fixture
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPSCOPE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "t.jsonl"
    shutil.copy(SAMPLE, path)
    return path


def tamper(trace: Path) -> None:
    """Mark the entry of ``trace``, so that a summary read from it shows."""
    entry_path = index.entry_path(str(trace))
    entry = orjson.loads(entry_path.read_bytes())
    entry["summary"]["events"] = -1
    entry_path.write_bytes(orjson.dumps(entry))


def test_a_finished_trace_is_summarised_once_then_read_from_its_entry(trace: Path) -> None:
    first = index.indexed_summary(str(trace))
    assert first == summarize(str(trace)) and index.entry_path(str(trace)).exists()
    tamper(trace)
    again = index.indexed_summary(str(trace))
    assert again["events"] == -1     # read from the entry, not folded again
    assert {k: v for k, v in again.items() if k != "events"} == \
        {k: v for k, v in first.items() if k != "events"}
    assert (again.runtime, again.unseen) == (first.runtime, first.unseen)


def test_an_entry_is_stale_when_the_trace_changed_size(trace: Path) -> None:
    index.indexed_summary(str(trace))
    tamper(trace)
    with trace.open("ab") as f:
        f.write(b'{"t":1,"ev":"mark","label":"later"}\n')
    assert index.indexed_summary(str(trace))["events"] == summarize(str(trace))["events"] > 0


def test_an_entry_is_stale_when_the_trace_was_rewritten_in_place(trace: Path) -> None:
    index.indexed_summary(str(trace))
    tamper(trace)
    st = trace.stat()
    os.utime(trace, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size, touched
    assert index.indexed_summary(str(trace))["events"] > 0


def test_an_entry_is_stale_when_the_trace_was_rewritten_within_a_clock_tick(trace: Path) -> None:
    index.indexed_summary(str(trace))
    tamper(trace)
    st = trace.stat()
    data = trace.read_bytes().replace(b'"threshold_ms":50.0', b'"threshold_ms":40.0', 1)
    trace.write_bytes(data)     # the same size
    os.utime(trace, ns=(st.st_atime_ns, st.st_mtime_ns))   # and the same mtime
    summary = index.indexed_summary(str(trace))
    assert summary["events"] > 0 and summary["threshold_ms"] == 40.0


def test_an_entry_holds_one_threshold(trace: Path) -> None:
    index.indexed_summary(str(trace))
    tamper(trace)
    assert index.indexed_summary(str(trace), threshold_ms=1.0) == summarize(str(trace), 1.0)


def test_a_trace_still_being_written_is_not_kept(trace: Path) -> None:
    lines = trace.read_bytes().splitlines(keepends=True)
    assert b'"ev":"end"' in lines[-1]
    trace.write_bytes(b"".join(lines[:-1]))   # no end line yet
    index.indexed_summary(str(trace))
    assert not index.entry_path(str(trace)).exists()


def test_the_warnings_of_bad_lines_are_given_again(trace: Path) -> None:
    lines = trace.read_bytes().splitlines(keepends=True)
    lines.insert(3, b"not json\n")
    trace.write_bytes(b"".join(lines))
    given: list[list[str]] = []
    for _ in range(2):
        warnings: list[str] = []
        index.indexed_summary(str(trace), warn=warnings.append)
        given.append(warnings)
    assert given == [["line 4 is not valid JSON; skipped"]] * 2


def test_an_unreadable_entry_is_passed_over(trace: Path) -> None:
    index.indexed_summary(str(trace))
    index.entry_path(str(trace)).write_bytes(b"{damaged")
    assert index.indexed_summary(str(trace)) == summarize(str(trace))
