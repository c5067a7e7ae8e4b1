"""Writing traces without harming anything: files created safely, descriptors checked by
identity, write errors counted, exit bounded, forked children kept apart.

Each test runs ``loopscope run`` (or ``tracer.start``) against real files, FIFOs, processes
and a real full disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from tracer.reader import read_trace

ROOT = Path(__file__).resolve().parents[2]


def run_app(tmp_path: Path, source: str, *options: str, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``loopscope run [options] app.py`` in ``tmp_path``, the app being ``source``."""
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "loopscope", "run", *options, str(app)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def events_of(path: Path) -> list[dict]:
    warnings: list[str] = []
    _, events = read_trace(str(path), warn=warnings.append)
    out = list(events)
    assert warnings == []
    return out


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused run."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopscope: error: "), proc.stderr
    return lines[0]


QUICK_APP = """
    from reactor import reactor
    reactor.callLater(0.05, reactor.stop)
    reactor.run()
"""


# -- 1. the trace file and exports ---------------------------------------------------------
def test_a_symlink_at_the_trace_path_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("someone else's data\n")
    victim.chmod(0o644)
    (tmp_path / "t.jsonl").symlink_to(victim)
    proc = run_app(tmp_path, QUICK_APP, "-o", "t.jsonl")
    assert proc.returncode == 2
    assert "symbolic link" in one_error_line(proc)
    assert victim.read_text() == "someone else's data\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_dangling_symlink_is_refused_and_nothing_is_created(tmp_path):
    (tmp_path / "t.jsonl").symlink_to(tmp_path / "planted")
    proc = run_app(tmp_path, QUICK_APP, "-o", "t.jsonl")
    assert proc.returncode == 2 and "symbolic link" in one_error_line(proc)
    assert not (tmp_path / "planted").exists()


def test_a_second_run_to_the_same_path_is_refused_and_the_first_trace_kept(tmp_path):
    first = run_app(tmp_path, QUICK_APP, "-o", "t.jsonl")
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "t.jsonl").read_bytes()
    second = run_app(tmp_path, "raise SystemExit('the app must not run')", "-o", "t.jsonl")
    assert second.returncode == 2
    assert "exists" in one_error_line(second)
    assert (tmp_path / "t.jsonl").read_bytes() == before
    assert events_of(tmp_path / "t.jsonl")[-1]["ev"] == "end"


def test_the_trace_is_private_whatever_the_umask(tmp_path):
    proc = run_app(tmp_path, "import os; os.umask(0)\n" + textwrap.dedent(QUICK_APP),
                   "-o", "t.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "t.jsonl").stat().st_mode) == 0o600


def test_a_fifo_is_written_as_it_is_and_a_fifo_nobody_reads_is_refused(tmp_path):
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    proc = run_app(tmp_path, QUICK_APP, "-o", str(fifo))
    assert proc.returncode == 2 and "no process is reading" in one_error_line(proc)
    with subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE) as reader:
        proc = run_app(tmp_path, QUICK_APP, "-o", str(fifo))
        received = reader.communicate(timeout=60)[0]
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in received.splitlines()]
    assert lines[0]["ev"] == "trace" and lines[-1]["ev"] == "end"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.fixture
def trace(tmp_path) -> Path:
    proc = run_app(tmp_path, QUICK_APP, "-o", "t.jsonl")
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "t.jsonl"


def export(trace: Path, out: Path | str, umask: int = 0o022) -> subprocess.CompletedProcess:
    code = (f"import os, sys; os.umask({umask}); from loopscope.cli import main; "
            f"sys.exit(main(['export', {str(trace)!r}, '-o', {str(out)!r}]))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def test_export_is_private_and_valid(trace, tmp_path):
    out = tmp_path / "t.chrome.json"
    proc = export(trace, out, umask=0)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert orjson.loads(out.read_bytes())["traceEvents"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "t.chrome.json", "t.jsonl"]


def test_export_replaces_a_link_at_its_output_without_following_it(trace, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    out = tmp_path / "out.json"
    out.symlink_to(victim)
    # A link planted at the temporary name an older loopscope used must not matter either.
    (tmp_path / "out.json.tmp").symlink_to(victim)
    proc = export(trace, out)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "keep me\n"
    assert not out.is_symlink() and orjson.loads(out.read_bytes())["traceEvents"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_export_to_a_device_writes_to_it_and_leaves_it_a_device(trace):
    proc = export(trace, "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_export_to_a_directory_is_one_line_and_leaves_nothing(trace, tmp_path):
    (tmp_path / "d").mkdir()
    proc = export(trace, tmp_path / "d")
    assert proc.returncode == 2 and "cannot write" in one_error_line(proc)
    assert list((tmp_path / "d").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "d", "t.jsonl"]


# -- 2. descriptors closed or replaced under the writer --------------------------------------
DAEMON_APP = """
    import os, sys, time
    import tracer
    from reactor.base import Reactor

    tracer.mark("before daemonizing")
    time.sleep(0.3)
    os.closerange(3, 65536)          # a daemon closes every descriptor it did not open ...
    {after_close}
    files = []
    for i in range(1010):            # ... and opens its own: they get the numbers back
        files.append(open(f"own/{{i}}.txt", "w"))
    time.sleep(0.5)                  # the writer flushes meanwhile (every 100 ms)
    for i, f in enumerate(files):
        f.write(f"app data {{i}}\\n")
        f.close()
    tracer.mark("after daemonizing")
    loop = Reactor()
    loop.callLater(0.05, loop.stop)
    loop.run()
    sys.exit(7)
"""


def check_own_files(tmp_path: Path) -> None:
    """Every file the app opened holds exactly what it wrote."""
    own = tmp_path / "own"
    assert len(list(own.iterdir())) == 1010
    for i in range(1010):
        assert (own / f"{i}.txt").read_text() == f"app data {i}\n"


def test_a_daemon_closing_and_reusing_descriptors_gets_no_trace_lines(tmp_path):
    (tmp_path / "own").mkdir()
    proc = run_app(tmp_path, DAEMON_APP.format(after_close=""), "-o", "t.jsonl")
    assert proc.returncode == 7, proc.stderr
    check_own_files(tmp_path)
    events = events_of(tmp_path / "t.jsonl")
    marks = [e["label"] for e in events if e["ev"] == "mark"]
    assert marks == ["before daemonizing", "after daemonizing"]  # reopened by its path
    assert events[-1]["ev"] == "end"
    assert "was reopened" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "loopscope: trace written to t.jsonl"


def test_when_the_trace_cannot_be_reopened_writing_stops_and_the_run_says_so(tmp_path):
    (tmp_path / "own").mkdir()
    # The trace is renamed away as well: the path is no longer the file the writer opened.
    app = DAEMON_APP.format(after_close='os.rename("t.jsonl", "moved.jsonl")')
    proc = run_app(tmp_path, app, "-o", "t.jsonl")
    assert proc.returncode == 7, proc.stderr
    check_own_files(tmp_path)
    assert not (tmp_path / "t.jsonl").exists()
    events = events_of(tmp_path / "moved.jsonl")  # what was written before is intact
    assert [e["label"] for e in events if e["ev"] == "mark"] == ["before daemonizing"]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("loopscope: the trace t.jsonl is incomplete: the trace stopped "
                           "early (the application closed or replaced"), last
    assert "events lost" in last


# -- 3. write errors: a real full disk ----------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 256 KiB tmpfs: a disk that fills up for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


FULL_DISK_APP = """
    import os, sys, time
    import tracer

    def mark_for(seconds, label):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            tracer.mark(f"{{label}} {{i}} " + "x" * 150)
            i += 1
            time.sleep(0.002)
        return i

    made = mark_for(0.3, "before")
    filler = os.open("filler", os.O_WRONLY | os.O_CREAT)
    try:                                    # the disk fills up
        while True:
            os.write(filler, b"\\0" * 4096)
    except OSError:
        os.close(filler)
    made += mark_for(0.6, "full")
    if {recover}:
        os.unlink("filler")                 # space comes back
        made += mark_for(0.3, "after")
    print(made)
    sys.exit(5)
"""


def read_lines(path: Path) -> list[dict]:
    """Every line of the file, each one whole, valid JSON (nothing merged, nothing cut)."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_full_disk_loses_counted_events_and_no_line_is_merged(small_disk):
    proc = run_app(small_disk, FULL_DISK_APP.format(recover=True), "-o", "t.jsonl")
    assert proc.returncode == 5, proc.stderr  # the app's own exit status
    assert "Traceback" not in proc.stderr
    lines = read_lines(small_disk / "t.jsonl")
    assert lines[0]["ev"] == "trace" and lines[-1]["ev"] == "end"
    labels = [e["label"].split()[0] for e in lines if e.get("ev") == "mark"]
    assert labels[0] == "before" and labels[-1] == "after"  # written again once space came back
    drops = [e for e in lines if e.get("ev") == "drop"]
    assert drops and sum(d["n"] for d in drops) == lines[-1]["dropped"] > 0
    made = int(proc.stdout)
    assert len(labels) < made <= len(labels) + lines[-1]["dropped"]
    assert lines[-1]["reason"] == "No space left on device"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("loopscope: the trace t.jsonl is incomplete: ")
    assert "events could not be written (No space left on device)" in last


def test_a_disk_still_full_at_exit_leaves_whole_lines_and_says_what_was_lost(small_disk):
    proc = run_app(small_disk, FULL_DISK_APP.format(recover=False), "-o", "t.jsonl")
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = read_lines(small_disk / "t.jsonl")
    assert lines[0]["ev"] == "trace"
    assert "events could not be written (No space left on device)" in proc.stderr.splitlines()[-1]


# -- 4. exit waits a bounded time for a slow reader ----------------------------------------------
STALLED_READER = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 100)      # takes the header's start, then never reads again
time.sleep(600)
"""

CHATTY_APP = """
    import sys
    import tracer
    for i in range(20000):   # far more than a pipe holds
        tracer.mark(f"event {i} " + "x" * 100)
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["option", "environment"])
def test_exit_is_bounded_when_the_fifo_reader_stops_reading(tmp_path, how):
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen([sys.executable, "-c", STALLED_READER, str(fifo)])
    try:
        options, env = (["--drain-timeout", "0.5"], {}) if how == "option" else (
            [], {"LOOPSCOPE_DRAIN_TIMEOUT": "0.5"})
        # Without a bound this run never ends (the subprocess timeout would fail the test).
        proc = run_app(tmp_path, CHATTY_APP, "-o", str(fifo), *options, env=env, timeout=60)
    finally:
        reader.kill()
        reader.wait()
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "events could not be written (its reader did not keep up until the drain timeout)" in last


@pytest.mark.parametrize("options, env, message", [
    (["--drain-timeout", "soon"], {}, "'soon' is not a number"),
    (["--drain-timeout", "-1"], {}, "must be a number of seconds"),
    ([], {"LOOPSCOPE_DRAIN_TIMEOUT": "forever"}, "LOOPSCOPE_DRAIN_TIMEOUT must be a number"),
])
def test_a_bad_drain_timeout_is_one_line(tmp_path, options, env, message):
    proc = run_app(tmp_path, QUICK_APP, "-o", "t.jsonl", *options, env=env)
    assert proc.returncode == 2 and message in one_error_line(proc)
    assert not (tmp_path / "t.jsonl").exists()


# -- 5. a forked child ----------------------------------------------------------------------------
FORKING_APP = """
    import os
    import tracer
    from reactor import reactor

    def work():
        for i in range(300):          # events still buffered when the fork happens
            tracer.mark(f"parent {i}")
        pid = os.fork()
        if pid == 0:                  # the child goes on with its own loop and exits normally
            tracer.mark("in the child")
            reactor.callLater(0.05, reactor.stop)
            return
        tracer.mark("parent after fork")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print(pid, flush=True)
        reactor.callLater(0.05, reactor.stop)

    reactor.callLater(0.05, work)
    reactor.run()
"""


def test_a_forked_child_traces_into_its_own_file_named_by_the_parent(tmp_path, capsys):
    proc = run_app(tmp_path, FORKING_APP, "-o", "t.jsonl")
    assert proc.returncode == 0, proc.stderr
    child_pid = int(proc.stdout)
    parent = events_of(tmp_path / "t.jsonl")
    labels = [e["label"] for e in parent if e["ev"] == "mark"]
    assert labels == [f"parent {i}" for i in range(300)] + ["parent after fork"]  # no duplicates
    assert [e["ev"] for e in parent].count("end") == 1
    [child_event] = [e for e in parent if e["ev"] == "child"]
    assert child_event["pid"] == child_pid and child_event["file"] == f"t.{child_pid}.jsonl"

    child_file = tmp_path / f"t.{child_pid}.jsonl"
    assert stat.S_IMODE(child_file.stat().st_mode) == 0o600
    header, events = read_trace(str(child_file))
    child = list(events)
    assert header["pid"] == child_pid and header["parent"] == "t.jsonl"
    assert [e["label"] for e in child if e["ev"] == "mark"] == ["in the child"]
    assert child[-1]["ev"] == "end"
    assert f"loopscope: trace written to {child_file}" in proc.stderr

    from loopscope.cli import main
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "t.jsonl")]) == 0
    out = capsys.readouterr().out
    assert f"pid {child_pid}: t.{child_pid}.jsonl" in out
    assert main(["summary", "--json", str(tmp_path / "t.jsonl")]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["children"] == [{"pid": child_pid, "file": f"t.{child_pid}.jsonl"}]
