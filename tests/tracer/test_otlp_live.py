"""``loopscope run --otlp``: a real traced app sending to a real OTLP/HTTP receiver on 127.0.0.1
(the ``collector`` fixture of test_otlp.py), its payloads decoded with opentelemetry-proto."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_otlp import attrs, decoded

from loopscope.otlp_live import Sender

ROOT = Path(__file__).resolve().parents[2]

#: Blocks the loop twice, waits (without blocking) for the file named by its argument if any,
#: blocks once more and exits with status 3.
APP = """\
import os, sys, time
from reactor import reactor

GATE = sys.argv[1] if len(sys.argv) > 1 else None
WAIT_S = 60

def stall():
    time.sleep(0.15)

def step(n, waited=0.0):
    if n < 2:
        stall()
        reactor.callLater(0.02, step, n + 1)
    elif GATE and not os.path.exists(GATE) and waited < WAIT_S:
        reactor.callLater(0.05, step, n, waited + 0.05)
    else:
        stall()
        reactor.stop()

reactor.callLater(0.02, step, 0)
reactor.run()
print("app done")
raise SystemExit(3)
"""


def run(tmp_path: Path, *options: str, gate: Path | None = None) -> subprocess.Popen:
    app = tmp_path / "app.py"
    app.write_text(APP)
    trace = tmp_path / f"t{len(list(tmp_path.glob('t*.jsonl')))}.jsonl"  # loopscope never overwrites one
    return subprocess.Popen(
        [sys.executable, "-m", "loopscope", "run", "-o", str(trace), *options,
         str(app), *([str(gate)] if gate else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def stall_spans(received: list) -> list:
    spans, _ = decoded(list(received))
    return [s for s in spans if s.name.startswith("blocked: ")]


def test_stalls_arrive_while_the_app_runs(collector, tmp_path):  # noqa: F811
    endpoint, received = collector
    gate = tmp_path / "gate"
    proc = run(tmp_path, "--otlp", "--otlp-endpoint", endpoint, gate=gate)
    deadline = time.monotonic() + 60
    while not stall_spans(received) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert stall_spans(received), "no stall span arrived while the app waited"
    assert proc.poll() is None  # the first span came before the app exited
    gate.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert out == "app done\n"
    spans = stall_spans(received)
    assert len(spans) == 3
    assert {attrs(s)["code.function"] for s in spans} == {"__main__.step"}
    assert all(s.status.code == 2 for s in spans)
    _, metrics = decoded(list(received))
    assert {"loopscope.loop.busy_ratio", "loopscope.callback.duration"} <= {m.name for m in metrics}
    [report] = [line for line in err.splitlines() if line.startswith("loopscope: otlp:")]
    assert report.startswith("loopscope: otlp: sent 3 spans") and "dropped" not in report


def test_span_over_sends_the_callbacks_too(collector, tmp_path):  # noqa: F811
    endpoint, received = collector
    proc = run(tmp_path, "--otlp", "--otlp-endpoint", endpoint, "--span-over", "0.001")
    proc.communicate(timeout=60)
    assert proc.returncode == 3
    spans, _ = decoded(list(received))
    assert len(spans) > len(stall_spans(received)) == 3


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_collector_that_is_down_leaves_the_app_alone(tmp_path, monkeypatch):
    plain = run(tmp_path)
    plain_out, _ = plain.communicate(timeout=60)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    proc = run(tmp_path, "--otlp")
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (plain.returncode, plain_out) == (3, "app done\n")
    assert err.count("cannot reach the collector") == 1
    assert "dropped" in err.splitlines()[-1]


def test_otlp_needs_an_endpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    proc = run(tmp_path, "--otlp")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err == ("loopscope: error: --otlp needs --otlp-endpoint URL or "
                   "$OTEL_EXPORTER_OTLP_ENDPOINT\n")


def test_help_documents_the_options():
    out = subprocess.run([sys.executable, "-m", "loopscope", "run", "--help"], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    for option in ("--otlp ", "--otlp-endpoint URL", "--span-over MS", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert option in out


@pytest.fixture
def stuck_collector() -> Iterator[tuple[str, list[bytes], threading.Event]]:
    """A receiver that holds every request until ``release`` is set: a collector that lags."""
    received: list[bytes] = []
    release = threading.Event()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            release.wait(60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received, release
    release.set()
    server.shutdown()
    server.server_close()


def wait_for(condition) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_lagging_collector_drops_the_oldest_queued_requests(stuck_collector):
    endpoint, received, release = stuck_collector
    sender = Sender(endpoint, capacity=2)
    sender.put("/v1/traces", b"first", 1)
    wait_for(lambda: received == [b"first"])  # in flight, held by the collector
    for body, spans in ((b"second", 2), (b"third", 3), (b"fourth", 4)):
        sender.put("/v1/traces", body, spans)
    assert (sender.dropped_requests, sender.dropped_spans) == (1, 2)
    release.set()
    sender.drain(30)
    assert received == [b"first", b"third", b"fourth"]
    assert (sender.sent_requests, sender.sent_spans) == (3, 8)
    assert "dropped 1 requests (2 spans)" in sender.report()


def test_the_drain_gives_up_on_a_collector_that_does_not_answer(stuck_collector):
    endpoint, _, _ = stuck_collector
    sender = Sender(endpoint)
    sender.put("/v1/traces", b"first", 5)
    sender.put("/v1/metrics", b"metrics", 0)
    sender.drain(0.2)
    assert (sender.sent_requests, sender.dropped_requests, sender.dropped_spans) == (0, 2, 5)


#: Starts a Python child that blocks its own loop once, waits for it, blocks once itself.
PARENT_APP = """\
import subprocess, sys, time
from reactor import reactor

CHILD = '''
import time
from reactor import reactor
def stall():
    time.sleep(0.15)
    reactor.stop()
reactor.callLater(0.02, stall)
reactor.run()
'''

def start():
    subprocess.run([sys.executable, "-c", CHILD], check=True)
    time.sleep(0.15)
    reactor.stop()

reactor.callLater(0.02, start)
reactor.run()
"""


@pytest.mark.parametrize("output", ["t.jsonl", "t", "run/"])
def test_a_child_process_is_sent_too(collector, tmp_path, output):  # noqa: F811
    """Into a trace file, named .jsonl or not (the child's beside it), or a folder: each
    process its own resource, one trace; a trace of another run lying beside them is not sent
    (a folder is new)."""
    endpoint, received = collector
    (tmp_path / "app.py").write_text(PARENT_APP)
    for stranger in ("t.999.jsonl", "t.999"):
        (tmp_path / stranger).write_bytes((ROOT / "traces" / "demo.jsonl").read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "loopscope", "run", "-o", f"{tmp_path}/{output}", "--otlp",
         "--otlp-endpoint", endpoint, "app.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    stalls = {}   # pid -> (parent pid, trace ids of its stall spans)
    for path, body, _ in received:
        if path != "/v1/traces":
            continue
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            res = attrs(rs.resource)
            ids = {s.trace_id for ss in rs.scope_spans for s in ss.spans
                   if s.name.startswith("blocked: ")}
            if ids:
                entry = stalls.setdefault(res["process.pid"], [res.get("process.parent_pid"), set()])
                entry[1] |= ids
    assert len(stalls) == 2, (stalls, proc.stderr)
    [parent] = [pid for pid, (ppid, _) in stalls.items() if ppid not in stalls]
    [child] = [pid for pid in stalls if pid != parent]
    assert stalls[child][0] == parent
    assert len(stalls[parent][1] | stalls[child][1]) == 1   # one trace
    [report] = [line for line in proc.stderr.splitlines() if line.startswith("loopscope: otlp:")]
    assert " from 2 processes" in report and "dropped" not in report, report
