"""Support for the asyncio adapter's tests: run a program under ``loopscope run`` in a child
process, read the summary of its trace, find lines in the programs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def loopscope_run(trace: Path, program: str, *args: str, wait: bool = True,
                  timeout: float = 60, probe: str | None = None
                  ) -> subprocess.CompletedProcess | subprocess.Popen:
    """``loopscope run -o TRACE programs/PROGRAM ARGS`` in a child process (with the probe
    ``probe``, "c" or "python", when given)."""
    argv = [sys.executable, "-m", "loopscope", "run", "-o", str(trace), str(PROGRAMS / program), *args]
    env = ENV if probe is None else {**ENV, "LOOPSCOPE_PROBE": probe}
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def summary(trace: Path, *options: str) -> dict:
    """``loopscope summary --json OPTIONS TRACE``."""
    out = subprocess.run([sys.executable, "-m", "loopscope", "summary", "--json", *options,
                          str(trace)],
                         capture_output=True, env=ENV, timeout=60, check=True).stdout
    return orjson.loads(out)


def summary_text(trace: Path) -> str:
    """``loopscope summary TRACE``."""
    return subprocess.run([sys.executable, "-m", "loopscope", "summary", str(trace)],
                          capture_output=True, text=True, env=ENV, timeout=60, check=True).stdout


def events(trace: Path) -> list[dict]:
    """Every event of a trace in object form (the header left out)."""
    from tracer.reader import read_trace
    return list(read_trace(str(trace))[1])


def def_line(program: str, name: str) -> int:
    """Line of ``def name(`` (or ``async def``) in a program."""
    lines = (PROGRAMS / program).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1)
                if line.lstrip().startswith((f"def {name}(", f"async def {name}(")))


def marked_lines(program: str, name: str, mark: str = "# blocks the loop") -> set[int]:
    """Lines of function ``name`` that carry ``mark``, and the line before each (a busy
    loop's sample may be at its own test)."""
    lines = (PROGRAMS / program).read_text().splitlines()
    start = def_line(program, name)
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    end = next((i for i in range(start, len(lines))
                if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) <= indent), len(lines))
    found = {i + 1 for i in range(start, end) if mark in lines[i]}
    return found | {line - 1 for line in found}


def innermost(rows: list[dict]) -> list[dict]:
    """Blocking rows that do not contain a deeper blocking row."""
    def contains(outer: dict, inner: dict) -> bool:
        return (inner["depth"] > outer["depth"] and outer["t_ms"] <= inner["t_ms"]
                and inner["t_ms"] + inner["dur_ms"] <= outer["t_ms"] + outer["dur_ms"] + 0.01)
    return [r for r in rows if not any(contains(r, other) for other in rows)]
