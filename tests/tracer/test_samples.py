"""The sample traces in traces/ still load with the current schema (the dashboard tests use them)."""

from pathlib import Path

import pytest

from tracer.model import TraceModel
from tracer.reader import VERSION
from tracer.summary import summarize

TRACES = sorted(p for p in (Path(__file__).resolve().parents[2] / "traces").glob("*.jsonl")
                if not p.name.endswith(".local.jsonl"))


def test_there_are_samples():
    assert {p.name for p in TRACES} >= {"blocking_server.jsonl", "demo.jsonl"}


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_sample_loads_cleanly(path):
    model = TraceModel.load(str(path), warn=pytest.fail)
    assert model.header["v"] == VERSION
    final = model.state_at(len(model))
    assert final.ended and final.dropped == 0
    assert final.blocking and all(b.dur_ns > 50_000_000 for b in final.blocking)
    assert final.unhandled and final.loop
    assert all(model.site(b.site).fn != "?" for b in final.blocking)
    assert summarize(str(path), warn=pytest.fail)["blocking"]


def test_a_sample_carries_markup_and_an_escape_for_the_injection_tests():
    text = "\n".join(p.read_text(encoding="utf-8") for p in TRACES)
    assert "[@click=app.quit]" in text and "[bold red]" in text and "\\u001b[2J" in text
