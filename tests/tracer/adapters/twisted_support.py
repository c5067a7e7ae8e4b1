"""Running the Twisted programs in twisted_apps/ under ``loopscope run``, and reading what
their traces say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tracer.reader import read_trace

ROOT = Path(__file__).resolve().parents[3]
APPS = Path(__file__).resolve().parent / "twisted_apps"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def app(name: str) -> Path:
    return APPS / name


def line_of(path: Path, text: str) -> int:
    """The line number of the first line of ``path`` containing ``text``."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def loopscope(*args: str, python: str = sys.executable, timeout: float = 120,
              **popen: object) -> subprocess.CompletedProcess:
    """``python -m loopscope ARGS`` in a child process."""
    return subprocess.run([python, "-m", "loopscope", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout, **popen)


def run_traced(trace: Path, program: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    """``loopscope run -o TRACE PROGRAM ARGS``; the program must succeed."""
    done = loopscope("run", "-o", str(trace), str(program), *args, python=python)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def summary(trace: Path, python: str = sys.executable) -> dict:
    """``loopscope summary --json TRACE``."""
    done = loopscope("summary", "--json", str(trace), python=python)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def events(trace: Path) -> list[dict]:
    """Every event of the trace, in object form, each with its ``site`` resolved in ``fn``."""
    _header, all_events = read_trace(str(trace))
    all_events = list(all_events)
    sites = {e["id"]: e["fn"] for e in all_events if e["ev"] == "site"}
    for e in all_events:
        if e["ev"] in ("call", "dcall", "stall", "tsub"):
            e["name"] = sites.get(e.get("site", e.get("fn")), "?")
    return all_events


def callbacks(found: dict, fn: str) -> list[dict]:
    """The summary's per-callback rows named ``fn``."""
    return [c for c in found["callbacks"] if c["fn"] == fn]
