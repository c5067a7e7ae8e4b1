"""End to end: `loopscope run` on the blocking example, then `summary` and `export` on its trace."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from loopscope.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "blocking_server.py"

pytestmark = pytest.mark.usefixtures("probe_impl")


def child_env() -> dict[str, str]:
    """The environment of a traced child: this one (LOOPSCOPE_PROBE chooses its probe)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def blocking_line(marker_fn: str) -> int:
    """Line of the statement marked '# blocks the loop' in function ``marker_fn`` of the example."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, text in enumerate(lines) if text.lstrip().startswith(f"def {marker_fn}("))
    return next(i for i in range(start, len(lines)) if "# blocks the loop" in lines[i]) + 1


def def_line(name: str) -> int:
    lines = EXAMPLE.read_text().splitlines()
    return next(i for i, text in enumerate(lines) if text.lstrip().startswith(f"def {name}(")) + 1


def run_traced(trace: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace), *extra, str(EXAMPLE)],
                          capture_output=True, text=True, env=child_env(), timeout=60)


def summary_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["summary", "--json", *args]) == 0
    return orjson.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def trace(tmp_path_factory, probe_impl) -> Path:
    path = tmp_path_factory.mktemp("run") / "blocking.jsonl"
    proc = run_traced(path)
    assert proc.returncode == 0, proc.stderr
    assert f"tracing to {path}" in proc.stderr
    return path


def innermost(rows: list[dict]) -> list[dict]:
    """Blocking rows that do not contain a deeper blocking row (the code that really blocked)."""
    def contains(outer, inner):
        return (inner["depth"] > outer["depth"] and outer["t_ms"] <= inner["t_ms"]
                and inner["t_ms"] + inner["dur_ms"] <= outer["t_ms"] + outer["dur_ms"] + 0.01)
    return [r for r in rows if not any(contains(r, other) for other in rows)]


@pytest.mark.timeout(60)
def test_summary_names_exactly_the_three_blocking_callbacks(trace, capsys):
    # Blocking at 100 ms (recorded at 50): the three take 120 ms and more. The app's
    # gc.collect() (15 ms of CPU) is the machine's time, past even 100 ms on a loaded one: its
    # callback is not one of the three, blocking or not.
    summary = summary_json(capsys, str(trace), "--threshold", "100")
    rows = [r for r in summary["blocking"] if r["fn"] != "__main__.leave_failure_unhandled"]
    expected = {
        ("__main__.SlowEcho.dataReceived", "read", def_line("dataReceived"), "dataReceived", 250),
        ("__main__.parse_reply", "deferred", def_line("parse_reply"), "parse_reply", 150),
        ("__main__.crunch", "timer", def_line("crunch"), "crunch", 120),
    }
    found = innermost(rows)
    assert {(r["fn"], r["kind"], r["line"]) for r in found} == {e[:3] for e in expected}
    for fn, _kind, _line, func, ms in expected:
        [row] = [r for r in found if r["fn"] == fn]
        assert row["file"] == str(EXAMPLE)
        assert row["dur_ms"] >= ms   # at least its sleep
        assert row["stack"], f"{fn} has no stall sample"
        # the sampled line is the marked statement (or, in a busy loop, the loop's own test)
        assert row["stack"][-1]["line"] in (blocking_line(func), blocking_line(func) - 1)
        assert row["stack"][-1]["file"] == str(EXAMPLE)
    # Nothing blocked outside those moments: every other row encloses one of them.
    for r in rows:
        assert r in found or any(r["t_ms"] <= f["t_ms"] <= r["t_ms"] + r["dur_ms"] for f in found)
    assert rows == sorted(rows, key=lambda r: -r["dur_ms"])
    assert all(r["kind"] != "thread" for r in rows)  # the 300 ms sleep in a pool thread
    [unhandled] = summary["deferreds"]["unhandled"]
    assert unhandled["exc"] == "ValueError" and "[@click=app.quit]" in unhandled["msg"]
    assert unhandled["fn"] == "__main__.leave_failure_unhandled"
    assert summary["events"] > 0 and summary["dropped"] == 0 and summary["threshold_ms"] == 100.0
    assert summary["loop"]["iterations"] > 0 and summary["loop"]["lag_max_ms"] >= summary["loop"]["lag_p50_ms"]


def test_summary_contract_keys(trace, capsys):
    summary = summary_json(capsys, str(trace))
    assert set(summary) == {"events", "dropped", "duration_ms", "threshold_ms", "loop", "blocking", "stalls",
                            "callbacks", "deferreds", "errors", "children"}
    assert set(summary["loop"]) == {"iterations", "busy_ratio", "lag_p50_ms", "lag_p99_ms", "lag_max_ms"}
    assert set(summary["blocking"][0]) == {"fn", "file", "line", "kind", "depth", "t_ms", "dur_ms", "stack"}
    assert set(summary["callbacks"][0]) == {"fn", "file", "line", "kind", "count", "total_ms", "mean_ms",
                                            "p99_ms", "max_ms", "blocking"}
    assert set(summary["deferreds"]) == {"created", "fired", "pending", "unhandled"}


def test_threshold_and_fail_over(trace, capsys):
    high = summary_json(capsys, str(trace), "--threshold", "200")
    assert [r["fn"] for r in high["blocking"]] == ["__main__.SlowEcho.dataReceived"]
    assert main(["summary", str(trace), "--fail-over", "100"]) == 1
    assert "over --fail-over 100 ms" in capsys.readouterr().err
    assert main(["summary", str(trace), "--fail-over", "5000"]) == 0


def test_text_summary_is_readable_and_inert(trace, capsys):
    assert main(["summary", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "SlowEcho.dataReceived" in out and "Blocking callbacks (" in out
    assert "\x1b" not in out  # the failure message's terminal escape is neutralised


def test_export_is_chrome_trace_json(trace, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["export", str(trace), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    events = data["traceEvents"]
    assert {"X", "i", "C", "s", "f", "M"} <= {e["ph"] for e in events}
    slices = [e for e in events if e["ph"] == "X" and e["name"] == "__main__.parse_reply"]
    assert slices and slices[0]["dur"] >= 150_000 and slices[0]["cat"] == "deferred"
    assert any(e["ph"] == "X" and e["cat"] == "thread" for e in events)


def wait_for(path: Path, text: bytes, timeout: float = 30.0) -> None:
    """Until the trace being written holds ``text`` (a loaded machine runs the app slowly)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_bytes()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_kill_9_leaves_a_readable_trace(tmp_path, capsys):
    path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "loopscope", "run", "-o", str(path), str(EXAMPLE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    wait_for(path, b'["dcall",')  # parse_reply's ran and was written: the app is mid-way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert b'"ev":"end"' not in path.read_bytes()
    summary = summary_json(capsys, str(path))
    fns = {r["fn"] for r in summary["blocking"]}
    assert {"__main__.SlowEcho.dataReceived", "__main__.parse_reply"} <= fns
    assert summary["duration_ms"] > 500


def test_sigterm_finishes_the_trace(tmp_path):
    path = tmp_path / "term.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "loopscope", "run", "-o", str(path), str(EXAMPLE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    wait_for(path, b'"state":"running"')  # tracing (and its SIGTERM handler) started
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    last = orjson.loads(path.read_bytes().splitlines()[-1])
    assert last["ev"] == "end"


def test_exit_status_and_argv_pass_through(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n")
    proc = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(tmp_path / "t.jsonl"),
                           str(script), "3", "--flag"], capture_output=True, text=True, env=child_env())
    assert proc.returncode == 3 and proc.stdout.strip() == "['3', '--flag']"


def test_run_module_and_crash(tmp_path):
    (tmp_path / "crashy.py").write_text("raise RuntimeError('boom')\n")
    trace = tmp_path / "t.jsonl"
    proc = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace), "-m", "crashy"],
                          capture_output=True, text=True, env=child_env(), cwd=tmp_path)
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr and "loopscope/cli.py" not in proc.stderr
    events = [orjson.loads(line) for line in trace.read_bytes().splitlines()[1:]]
    assert any(e["ev"] == "error" and e["kind"] == "app" and e["exc"] == "RuntimeError" for e in events)


def test_run_refuses_missing_targets(tmp_path, capsys):
    assert main(["run", "-o", str(tmp_path / "t.jsonl"), str(tmp_path / "missing.py")]) == 2
    assert main(["run", "-o", str(tmp_path / "t.jsonl"), "-m", "no_such_module_here"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "no module named 'no_such_module_here'" in err
