"""The compiled passes (tracer/_scan.c) give what the Python ones give, warning for the same
lines: the summary the Python fold gives, and the Chrome export byte for byte.  On the sample
traces, on a recorded busy trace, and on random traces of the trace grammar
(tests/tracer/test_fuzz.py's, and sequences of rows whose ids, durations and stall keys meet,
so blocking calls, stalls, nested chains, flows and Deferred chains occur)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import trace_file

from tracer import scan
from tracer.export import export_chrome
from tracer.reader import MAX_LINE, TraceError
from tracer.summary import summary_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "traces").glob("*.jsonl"))
# As with the C probe (conftest.py), the suite must pass where the extension is not built.
pytestmark = pytest.mark.skipif(not scan.COMPILED, reason="tracer._scan is not built")


def both_folds(path: str, threshold_ms: float | None = None) -> tuple[dict, list[str]]:
    """The summary and the warnings of both folds, checked equal."""
    results = []
    for compiled in (True, False):
        warnings: list[str] = []
        summary = summary_of(scan.fold(path, threshold_ms, warnings.append, compiled=compiled))
        results.append((summary, warnings))
    (fast, fast_warnings), (python, python_warnings) = results
    assert fast_warnings == python_warnings
    assert fast == python
    return fast, fast_warnings


def both_exports(path: str) -> bytes:
    """The Chrome export of both writers, checked equal, with the same warnings."""
    results = []
    for compiled in (True, False):
        warnings: list[str] = []
        out = io.BytesIO()
        count = export_chrome(path, out, warnings.append, compiled=compiled)
        results.append((out.getvalue(), count, warnings))
    assert results[0] == results[1]
    return results[0][0]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("threshold_ms", [None, 0.001, 5.0])
def test_samples_fold_the_same(sample: Path, threshold_ms: float | None) -> None:
    summary, warnings = both_folds(str(sample), threshold_ms)
    assert warnings == [] and summary["events"] > 100
    assert summary["stalls"] and summary["callbacks"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_export_the_same(sample: Path) -> None:
    chrome = both_exports(str(sample))
    assert b'"ph":"X"' in chrome and b'"ph":"f"' in chrome


def test_a_recorded_busy_trace_folds_the_same(tmp_path: Path) -> None:
    trace = tmp_path / "busy.jsonl"
    subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                    "examples/blocking_busy.py", "50000"], cwd=ROOT, check=True, timeout=100,
                   capture_output=True)
    summary, _ = both_folds(str(trace))
    assert summary["events"] > 100_000 and len(summary["stalls"]) == 1
    assert both_exports(str(trace)).count(b'"ph":"X"') > 50_000


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_bytes(data)
        try:
            both_folds(str(path))
            both_exports(str(path))
        except TraceError:
            pass  # a damaged header: both folds refuse it before reading a line


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(trace_file())
def test_random_traces_of_the_grammar_fold_the_same(data: bytes) -> None:
    check(data)


#: Small numbers, so that ids, depths and stall keys meet; now and then an extreme one.
SMALL = st.one_of(st.integers(0, 4), st.integers(0, 4), st.sampled_from([-1, 1 << 62, -(1 << 63), (1 << 63) - 1]))
TIME = st.integers(0, 6)
DUR = st.sampled_from([0, 3, 20, 1 << 62])   # the threshold below is 10 ns


@st.composite
def busy_line(draw) -> list | dict:
    """A line of a busy trace (or two): mostly rows, some objects of the kinds they meet
    (tests/tracer/test_indexed.py folds them too)."""
    kind = draw(st.sampled_from(["call", "call", "dcall", "timer", "dnew", "dfire", "dadd", "poll",
                                 "stall", "stalled", "stalled", "dchain", "unhandled", "site",
                                 "callobj", "dfireobj", "tcancel", "dcancel", "reactor", "fdadd",
                                 "end", "dfailed"]))
    t, d, site, depth = draw(TIME), draw(SMALL), draw(SMALL), draw(SMALL)
    if kind == "call":
        return ["call", t, draw(st.sampled_from(["timer", "read", "x" * 201])), site, draw(DUR),
                depth, draw(st.one_of(st.none(), SMALL)), draw(st.one_of(st.none(), SMALL)), None]
    if kind == "callobj":  # a call that raised, or one without its time
        event = {"ev": "call", "kind": "timer", "site": site, "dur": draw(DUR), "depth": depth,
                 "exc": "ValueError"}
        return event | ({"t": t} if draw(st.booleans()) else {})
    if kind == "dcall":
        return ["dcall", t, d, site, draw(DUR), depth, draw(st.booleans()), draw(st.booleans())]
    if kind == "timer":
        return ["timer", t, d, site, draw(SMALL), draw(st.one_of(st.none(), TIME))]
    if kind == "dnew":
        return ["dnew", t, d, site]
    if kind == "dfire":
        return ["dfire", t, d, draw(st.booleans())]
    if kind == "dfireobj":  # without a time
        return {"ev": "dfire", "d": d, "fail": draw(st.booleans())}
    if kind == "dadd":
        return ["dadd", t, d, site, 0]
    if kind == "poll":
        return ["poll", t, draw(SMALL), 3, 2]
    if kind == "stall":
        return {"t": t, "ev": "stall", "site": site, "kind": "timer", "depth": depth,
                "since": t - draw(DUR), "blocked": 1, "stack": [["/app.py", t, f"f{site}"]]}
    if kind == "stalled":  # a call and the stall sample taken while it ran
        dur = draw(DUR)
        return [{"t": t, "ev": "stall", "site": site, "kind": "timer", "depth": depth,
                 "since": t - dur, "blocked": 1, "stack": [["/app.py", t, f"f{site}"]]},
                ["call", t + draw(st.integers(0, 1)), "timer", site, dur, depth, None, None, None]]
    if kind == "dfailed":  # a Deferred whose callback failed, or that fired with a failure
        return [["dnew", t, d, site],
                draw(st.sampled_from([["dcall", t, d, site, draw(DUR), depth, False, True],
                                      ["dfire", t, d, True]]))]
    if kind == "dchain":
        event = {"ev": "dchain", "d": d, "inner": draw(SMALL)}
        return event | ({"t": t} if draw(st.booleans()) else {})
    if kind == "tcancel":
        return {"t": t, "ev": "tcancel", "id": d}
    if kind == "dcancel":
        return {"t": t, "ev": "dcancel", "d": d}
    if kind == "reactor":
        return {"t": t, "ev": "reactor", "state": draw(st.sampled_from(["running", "stopped"]))}
    if kind == "fdadd":  # a writer, which a poll that did not sleep finds writable
        return {"t": t, "ev": "fdadd", "fd": 3, "mode": "w"}
    if kind == "end":
        return {"t": t, "ev": "end"}
    if kind == "unhandled":
        return {"t": t, "ev": "unhandled", "d": d, "site": site, "exc": "E"}
    return {"t": t, "ev": "site", "id": site, "fn": f"m.f{draw(st.integers(0, 2))}",
            "file": "/app.py", "line": 1}


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(busy_line(), max_size=60), st.sampled_from([b"", b" ", b"\r"]))
def test_random_busy_traces_fold_the_same(lines: list, spacing: bytes) -> None:
    header = b'{"ev":"trace","v":1,"threshold_ms":0.00001}\n'
    flat = [one for line in lines
            for one in (line if type(line) is list and type(line[0]) is not str else [line])]
    body = b"".join(json.dumps(line, separators=(",", ":")).encode() + spacing + b"\n"
                    for line in flat)
    check(header + body)


def test_lines_past_the_limit_warn_the_same(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    long = b'{"t":1,"ev":"mark","label":"' + b"x" * MAX_LINE + b'"}'
    path.write_bytes(b'{"ev":"trace","v":1}\n["dnew",1,1,1]\n' + long + b"\nnot json\n"
                     + long + b'\n["dfire",2,1,false]\n')
    both_exports(str(path))
    summary, warnings = both_folds(str(path))
    assert warnings == ["line 3 is longer than 64 MiB; skipped", "line 4 is not valid JSON; skipped",
                        "line 5 is longer than 64 MiB; skipped"]
    assert summary["deferreds"] == {"created": 1, "fired": 1, "pending": 0, "unhandled": []}
