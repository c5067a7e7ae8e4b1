"""``export --format otlp``: to a real OTLP/HTTP receiver on 127.0.0.1, decoded with the
OpenTelemetry protobuf definitions (opentelemetry-proto), and to an OTLP/JSON file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from loopscope.cli import main
from tracer.summary import summarize

SAMPLE = str(Path(__file__).resolve().parents[2] / "traces" / "blocking_server.jsonl")


def decoded(received: list[tuple[str, bytes, str]]) -> tuple[list, list]:
    spans, metrics = [], []
    for path, body, content_type in received:
        assert content_type == "application/x-protobuf"
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        else:
            assert path == "/v1/metrics"
            request = ExportMetricsServiceRequest.FromString(body)
            metrics += [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return spans, metrics


def attrs(obj) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in obj.attributes}


def test_a_span_per_stall_with_its_stack_and_loop_metrics(collector, capsys):
    endpoint, received = collector
    assert main(["export", "--format", "otlp", "--endpoint", endpoint, SAMPLE]) == 0
    spans, metrics = decoded(received)
    summary = summarize(SAMPLE)
    stalls = [b for b in summary["blocking"] if b["depth"] == 0]
    assert len(spans) == len(stalls) > 0
    by_name = {s.name: s for s in spans}
    for stall in stalls:
        span = by_name[f"blocked: {stall['fn']}"]
        a = attrs(span)
        assert (a["code.function"], a["code.filepath"], a["code.lineno"]) == (
            stall["fn"], stall["file"], stall["line"])
        assert span.end_time_unix_nano - span.start_time_unix_nano == pytest.approx(
            stall["dur_ms"] * 1e6, abs=1e3)
        assert span.status.code == 2 and "blocked the event loop" in span.status.message
        if stall["stack"]:
            sample = attrs(span.events[-1])
            assert sample["code.lineno"] == stall["stack"][-1]["line"]
            assert f'line {stall["stack"][-1]["line"]}' in sample["code.stacktrace"]
    assert {m.name for m in metrics} == {"loopscope.loop.busy_ratio", "loopscope.timer.lag",
                                         "loopscope.callback.duration"}
    duration = next(m for m in metrics if m.name == "loopscope.callback.duration")
    [point] = duration.histogram.data_points
    assert point.count == sum(c["count"] for c in summary["callbacks"]) == sum(point.bucket_counts)
    assert f"sent {len(spans)} spans and 3 metrics" in capsys.readouterr().err


def test_span_over_adds_callbacks_and_links_to_the_scheduling_call(collector):
    endpoint, received = collector
    assert main(["export", "--format", "otlp", "--endpoint", endpoint, "--span-over", "0.001",
                 SAMPLE]) == 0
    spans, _ = decoded(received)
    assert len(spans) > 3
    ids = {s.span_id for s in spans}
    links = [link for s in spans for link in s.links]
    assert links and all(link.span_id in ids for link in links)
    assert all(attrs(link)["loopscope.link"] in ("scheduled by", "created by") for link in links)


def test_the_environment_names_the_endpoint(collector, monkeypatch):
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    assert main(["export", "--format", "otlp", SAMPLE]) == 0
    assert {path for path, _, _ in received} == {"/v1/traces", "/v1/metrics"}


def test_otlp_json_file(tmp_path):
    out = tmp_path / "t.otlp.jsonl"
    assert main(["export", "--format", "otlp", SAMPLE, "-o", str(out)]) == 0
    traces, metrics = (orjson.loads(line) for line in out.read_bytes().splitlines())
    spans = traces["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans and all(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 for s in spans)
    assert len(metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]) == 3


def test_an_unreachable_collector_is_one_line(capsys):
    assert main(["export", "--format", "otlp", "--endpoint", "http://127.0.0.1:9", SAMPLE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopscope: error: cannot reach the collector") and err.count("\n") == 1
