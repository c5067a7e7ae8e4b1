"""Every reader path on what is not a plain, well-typed trace file: FIFOs, devices,
directories, unreadable files and read errors give one line; wrong types, huge values and long
lines are handled; text reaching a terminal is inert."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest

import tracer
from loopscope.cli import main  # imported here: the unprivileged child cannot read the stdlib
from tracer import reader
from tracer.model import TraceModel
from tracer.reader import Follower, read_trace
from tracer.summary import format_text, summarize

ROOT = Path(__file__).resolve().parents[2]
HEADER = {"ev": "trace", "v": 1, "pid": 1, "argv": ["app.py"], "start_wall": 1.0,
          "threshold_ms": 50.0}


def write(path: Path, header: dict, *events: dict | bytes) -> Path:
    lines = [orjson.dumps(header)] + [e if isinstance(e, bytes) else orjson.dumps(e) for e in events]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess:
    """``loopscope ARGS`` in a fresh process (a hang fails on the timeout)."""
    return subprocess.run([sys.executable, "-m", "loopscope", *args], capture_output=True,
                          text=True, timeout=60, user=user, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopscope: error: "), proc.stderr
    return lines[0]


# -- inputs that are not trace files ----------------------------------------------------------
@pytest.mark.parametrize("command", ["summary", "export", "serve"])
def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path, command):
    fifo = tmp_path / "t.jsonl"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it to read would block forever
    assert "is a FIFO, not a trace file" in one_error(cli(command, str(fifo)))


@pytest.mark.parametrize("path, message", [
    ("/dev/null", "is a device, not a trace file"),
    (str(ROOT), "holds no loopscope trace (no readable *.jsonl file)"),   # a folder: none there
    ("/proc/self/mem", "cannot read /proc/self/mem: Input/output error"),  # a real EIO
])
def test_devices_directories_and_read_errors_are_one_line(path, message):
    assert message in one_error(cli("summary", path))
    assert message in one_error(cli("export", path, "-o", "/dev/null"))


def test_an_unreadable_file_is_one_line():
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # outside pytest's private tmp: others may look
    try:
        trace = write(folder / "t.jsonl", HEADER)
        trace.chmod(0)
        folder.chmod(0o755)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a process that may not read the file (root reads anything: nobody not)
            try:
                os.dup2(w, 2)
                if os.getuid() == 0:
                    os.setuid(65534)
                sys.stderr = os.fdopen(2, "w")
                main(["summary", str(trace)])
                sys.stderr.flush()
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            err = pipe.read().decode()
        os.waitpid(pid, 0)
        if os.getuid() != 0 and os.access(trace, os.R_OK):
            pytest.skip("this user reads a mode-0 file")
        assert err == f"loopscope: error: cannot open {trace}: Permission denied\n"
    finally:
        shutil.rmtree(folder)


def test_a_boolean_version_is_not_version_1(tmp_path):
    trace = write(tmp_path / "t.jsonl", {**HEADER, "v": True})
    assert "is trace format version True" in one_error(cli("summary", str(trace)))


# -- long lines ---------------------------------------------------------------------------------
def test_a_header_with_a_long_argv_and_a_long_line_are_read(tmp_path):
    argv = [f"--option-{i}=" + "v" * 100 for i in range(50_000)]  # a 5 MB header
    label = "m" * (3 << 20)
    trace = write(tmp_path / "t.jsonl", {**HEADER, "argv": argv},
                  {"t": 1, "ev": "mark", "label": label}, {"t": 2, "ev": "mark", "label": "after"})
    header, events = read_trace(str(trace), warn=pytest.fail)
    assert header["argv"] == argv
    assert [e["label"] for e in events] == [label, "after"]
    model = TraceModel.load(str(trace), warn=pytest.fail)
    assert [m.label for m in model.state.marks] == [label[:199] + "…", "after"]  # readers cut


def test_following_in_chunks_reads_past_a_line_longer_than_a_chunk(tmp_path):
    label = "m" * (1 << 20)
    trace = write(tmp_path / "t.jsonl", HEADER, {"t": 1, "ev": "mark", "label": label},
                  {"t": 2, "ev": "mark", "label": "after"})
    got = []
    with Follower(str(trace), warn=pytest.fail) as follower:
        for _ in range(50):  # what the dashboard's feed does: 256 KiB at a time
            got += [event["label"] for event, _line in follower.poll(256 << 10)]
    assert got == [label, "after"]


def test_a_line_past_the_limit_is_skipped_with_its_number(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE", 1 << 16)
    trace = write(tmp_path / "t.jsonl", HEADER, {"t": 1, "ev": "mark", "label": "m" * (1 << 18)},
                  {"t": 2, "ev": "mark", "label": "after"})
    for read in ("iterate", "follow"):
        warnings: list[str] = []
        if read == "iterate":
            _, events = read_trace(str(trace), warn=warnings.append)
            labels = [e["label"] for e in events]
        else:
            with Follower(str(trace), warn=warnings.append) as follower:
                labels = [e["label"] for _ in range(20) for e, _line in follower.poll(1 << 12)]
        assert labels == ["after"] and warnings == ["line 2 is longer than 0 MiB; skipped"]


def test_the_recorder_bounds_argv_so_the_header_stays_short(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py"] + ["x" * 10_000] * 100_000)
    tracer.start(str(tmp_path / "t.jsonl"))
    tracer.stop()
    header, _ = read_trace(str(tmp_path / "t.jsonl"), warn=pytest.fail)
    assert len(header["argv"]) == 65 and header["argv"][-1] == "… 99937 more"
    assert all(len(a) <= 200 for a in header["argv"])
    assert len((tmp_path / "t.jsonl").read_bytes().split(b"\n")[0]) < 20_000


# -- well-typed but absurd values ---------------------------------------------------------------
def test_absurd_values_are_read_without_error_and_exports_stay_valid(tmp_path):
    big = (1 << 63) - 1
    trace = write(
        tmp_path / "t.jsonl", HEADER,
        {"t": 5, "ev": "site", "id": 1, "fn": "f" * 10_000, "file": "p" * 10_000, "line": -big},
        {"t": -big - 1, "ev": "call", "kind": "timer", "site": 1, "dur": big, "depth": -5,
         "timer": big, "lag": -big},
        {"t": 9, "ev": "stall", "site": 77, "kind": "read", "depth": big, "since": -big,
         "blocked": big, "stack": [["f" * 10_000, big, "g" * 10_000]] * 1000},
        {"t": 10, "ev": "drop", "n": big}, {"t": 11, "ev": "drop", "n": big},
        {"t": 12, "ev": "dcall", "d": 404, "site": 99, "dur": -1, "depth": 0, "eb": True,
         "fail": True},
        {"t": 13, "ev": "timer", "id": big, "site": 1, "fn": 1, "due": None},
        {"t": 14, "ev": "call", "kind": "timer", "site": 1, "dur": 1, "depth": 0, "timer": big},
        {"t": 15, "ev": "no-such-kind", "x": [1, 2]},
        b'{"t":16,"ev":"mark","label":"x","n":99999999999999999999999}',
        {"t": 17, "ev": "call", "kind": "read", "site": 1, "dur": 10**18, "depth": 0})
    summary = summarize(str(trace), warn=pytest.fail)
    assert summary["dropped"] == big  # two huge drops add up to no more than int64 holds
    orjson.dumps(summary)
    assert "f" * 301 not in format_text(summary)
    out = tmp_path / "t.chrome.json"
    proc = cli("export", str(trace), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(out.read_bytes())["traceEvents"]
    model = TraceModel.load(str(trace), warn=pytest.fail)
    for i in range(len(model) + 1):
        model.state_at(i)
    stack = model.state_at(3).running.stack  # the stall: names in stacks are cut by readers
    assert len(stack) == 64 and {(len(f.file), len(f.func)) for f in stack} == {(1024, 300)}
    assert len(model.site(1).fn) == 300 and len(model.site(1).file) == 1024


# -- text from a trace is inert in the terminal ---------------------------------------------------
def test_text_summary_sanitises_every_field_from_the_trace(tmp_path):
    evil = "\x1b[2J\x1b]0;owned\x07\u202egnp.exe\u200b\ufeff\u2066"
    trace = write(
        tmp_path / "t.jsonl", HEADER,
        {"t": 1, "ev": "site", "id": 1, "fn": evil, "file": evil, "line": 1},
        {"t": 100_000_000, "ev": "stall", "site": 1, "kind": evil, "depth": 0, "since": 0,
         "blocked": 100_000_000, "stack": [[evil, 1, evil]]},
        {"t": 200_000_000, "ev": "call", "kind": evil, "site": 1, "dur": 200_000_000, "depth": 0},
        {"t": 201_000_000, "ev": "error", "site": 1, "kind": evil, "exc": evil, "msg": evil},
        {"t": 202_000_000, "ev": "unhandled", "d": 1, "site": 1, "exc": evil, "msg": evil},
        {"t": 203_000_000, "ev": "child", "pid": 7, "file": evil})
    proc = cli("summary", str(trace))
    assert proc.returncode == 0, proc.stderr
    for bad in ("\x1b", "\x07", "\u202e", "\u200b", "\ufeff", "\u2066"):
        assert bad not in proc.stdout
    assert "gnp.exe" in proc.stdout  # shown, made harmless
