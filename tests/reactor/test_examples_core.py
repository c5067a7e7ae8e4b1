"""The seed programs 1 and 4, run as a user would: python examples/NAME.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "examples" / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.timeout(40)
def test_raw_descriptor_reads_the_poem_then_stops_cleanly() -> None:
    done = run_example("raw_descriptor.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Tyger Tyger, burning bright,\n")
    assert "Could frame thy fearful symmetry?\n" in done.stdout
    assert done.stdout.rstrip().endswith(
        "[connection lost: Connection was closed cleanly: Connection done.; 119 bytes]")
    assert done.stderr == ""


@pytest.mark.timeout(40)
def test_threads_demo_keeps_ticking_while_the_thread_sleeps() -> None:
    done = run_example("threads_demo.py")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    start, end = out.index("start sleep 0.5"), out.index("end sleep 0.5")
    assert "." in out[start:end]  # the ticker ran while the pool thread slept
    assert "deferToThread(sleep) result: 'OK' (on the reactor thread)" in out
    assert "callInThread(build_dicts) result: 100 (on the reactor thread)" in out
    assert out.rstrip().endswith("reactor stopped")
    assert done.stderr == ""


@pytest.mark.timeout(100)
def test_bench_quick_prints_a_json_line_per_runtime_and_the_ratios() -> None:
    import json

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "timers",
                           "--runtime", "loopscope", "--runtime", "twisted",
                           "--runtime", "loopscope-traced"],
                          cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(r["workload"], r["runtime"], r["n"]) for r in records] == [
        ("timers", "loopscope", 20000), ("timers", "twisted", 20000),
        ("timers", "loopscope-traced", 20000)]
    traced = records[2]
    assert len(traced["slowdown_rounds"]) == len(traced["cpu_rounds"]) == 1
    assert traced["cpu_rounds"][0] > 0
    assert all(r["seconds"] > 0 and r["per_sec"] > 0 for r in records)
    assert any(line.strip().startswith("timers    ours/twisted") for line in lines)
    assert any("loopscope/twisted" in line and "target >= 1.5x" in line for line in lines)
    slowdown = next(line for line in lines if line.strip().startswith("timers") and "rounds" in line)
    assert "median of 1 rounds (CPU time " in slowdown and "target <= 1.5x" in slowdown


def test_bench_rejects_an_unknown_workload_in_one_line() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "nonsense"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nonsense" in done.stderr
