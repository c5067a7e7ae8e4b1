"""The indexed model (tracer/indexed.py, on the compiled fold) gives the states the Python
model gives, at every event: on the sample traces, on random traces of the grammar and of
busy rows, fed in chunks of any size, with a copy of the fold every few events, and while
the trace grows.  Its events, times, kinds and time lookups are the Python model's too."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import trace_file
from test_scan import busy_line

from tracer import indexed
from tracer.indexed import IndexedModel, open_model
from tracer.model import TraceModel
from tracer.reader import Follower, TraceError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "traces").glob("*.jsonl"))
pytestmark = pytest.mark.skipif(not indexed.usable({}), reason="tracer._scan is not built")


def fed(path: str, chunk: int, warn: list[str]) -> IndexedModel | None:
    """The trace at ``path`` fed to an IndexedModel in chunks of about ``chunk`` bytes (None
    when its header's threshold is past what the compiled fold takes)."""
    model = None
    with Follower(path, warn=warn.append) as follower:
        while True:
            before = follower.offset
            block = follower.poll_block(chunk)
            if model is None and follower.header is not None:
                if not indexed.usable(follower.header):
                    return None
                model = IndexedModel(path, follower.header, warn.append)
            if model is not None and block is not None:
                model.add_block(*block)
            if follower.offset == before:
                return model


def assert_same(python: TraceModel, model: IndexedModel) -> None:
    n = len(python)
    assert len(model) == n
    for i in range(n):
        assert model.event(i) == python.event(i), i
        assert (model.time_ns(i), model.kind(i)) == (python.time_ns(i), python.kind(i)), i
    for t in {0, -1, 1 << 70, -(1 << 70)} | {python.time_ns(i) for i in range(n)}:
        assert model.index_at(t) == python.index_at(t), t
    assert model.duration_ns == python.duration_ns
    assert model.sites == python.sites
    states = [python.state_at(i) for i in range(n + 1)]
    for i in range(n + 1):
        assert model.state_at(i) == states[i], i
    for i in reversed(range(n + 1)):   # backwards: from a copy each time, not the cache
        assert model.state_at(i) == states[i], i
    assert model.state == python.state


def check(path: str, chunk: int) -> None:
    python_warnings: list[str] = []
    try:
        python = TraceModel.load(path, warn=python_warnings.append)
    except TraceError:
        return   # a damaged header: the dashboard says so before any model is made
    warnings: list[str] = []
    model = fed(path, chunk, warnings)
    if model is None:
        return
    assert warnings == python_warnings
    assert_same(python, model)


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the fold every three events, so that states come from copies."""
    monkeypatch.setattr(indexed, "CHECKPOINT_EVERY", 3)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_give_the_same_states(sample: Path, small_checkpoints: None) -> None:
    check(str(sample), 4096)


def check_data(data: bytes, chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_bytes(data)
        check(str(path), chunk)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=trace_file(), chunk=st.sampled_from([1, 64, 1 << 16]))
def test_random_traces_of_the_grammar_give_the_same_states(data: bytes, chunk: int,
                                                           small_checkpoints: None) -> None:
    check_data(data, chunk)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(busy_line(), min_size=20, max_size=80), chunk=st.sampled_from([1, 100, 1 << 16]))
def test_random_busy_traces_give_the_same_states(lines: list, chunk: int,
                                                 small_checkpoints: None) -> None:
    header = b'{"ev":"trace","v":1,"threshold_ms":0.00001}\n'
    flat = [one for line in lines
            for one in (line if type(line) is list and type(line[0]) is not str else [line])]
    check_data(header + b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n"
                                 for line in flat), chunk)


def test_a_growing_trace_gives_the_same_states(tmp_path: Path, small_checkpoints: None) -> None:
    """Followed while its writer appends, a line cut mid-way included."""
    sample = max(SAMPLES, key=lambda p: p.stat().st_size).read_bytes()
    path = tmp_path / "live.jsonl"
    path.write_bytes(b"")
    pieces = [sample[i:i + 7777] for i in range(0, len(sample), 7777)]
    with Follower(str(path), warn=pytest.fail) as follower, open(path, "ab", buffering=0) as out:
        model: IndexedModel | None = None
        for piece in pieces:
            out.write(piece)
            block = follower.poll_block()
            if model is None and follower.header is not None:
                model = IndexedModel(str(path), follower.header, pytest.fail)
            if model is not None and block is not None:
                model.add_block(*block)
            if model is not None:
                python = TraceModel.load(str(path), warn=pytest.fail)
                assert model.state == python.state
                assert model.state_at(len(model) // 2) == python.state_at(len(python) // 2)
    assert model is not None and len(model) > 1000


def test_the_dashboard_gets_the_indexed_model_where_it_can(tmp_path: Path) -> None:
    sample = str(SAMPLES[0])
    assert isinstance(open_model(sample, {"threshold_ms": 50.0}), IndexedModel)
    # a threshold past int64 nanoseconds is the Python fold's
    assert isinstance(open_model(sample, {"threshold_ms": 1e13}), TraceModel)
