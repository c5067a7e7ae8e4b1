"""Many processes: an app that starts a multiprocessing worker (fork, spawn, forkserver) and a
Python subprocess, run by ``loopscope run -o DIR/``, is traced into one folder, one linked
trace per process; ``summary`` and ``export`` show each process with its own stall.

Every test runs real processes: the app of tests/tracer/three_processes blocks the parent's
reactor in ``parent_blocks``, the worker's reactor in ``worker_blocks`` and the subprocess's
asyncio loop in ``child_blocks``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import orjson
import pytest

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_otlp import attrs

from loopscope.cli import main
from tracer.folder import open_folder
from tracer.spawned import BOOT_DIR, ENV
from tracer.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "three_processes" / "app.py"
#: Each process's own blocking function and the file it is in.
STALLS = {"root": ("parent_blocks", "app.py"), "worker": ("worker_blocks", "workers.py"),
          "subprocess": ("child_blocks", "asyncio_child.py")}


def run_loopscope(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loopscope", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False,
                          env=env or {**os.environ, "PYTHONPATH": str(ROOT)})


def run_into_folder(tmp: Path, name: str, source: str) -> subprocess.CompletedProcess:
    """``loopscope run -o out/`` on the app ``source`` (dedented), written as ``tmp/name``."""
    app = tmp / name
    app.write_text(textwrap.dedent(source))
    return run_loopscope(tmp, "run", "-o", "out/", str(app))


def record(tmp: Path, method: str) -> Path:
    folder = tmp / f"run-{method}"
    proc = run_loopscope(tmp, "run", "-o", f"{folder}/", str(APP), method)
    assert proc.returncode == 0, proc.stderr
    assert "worker" in proc.stdout and proc.stdout.split()[2] == "0", proc.stdout  # exit codes
    assert proc.stdout.split()[5] == "0", proc.stdout
    return folder


@pytest.fixture(scope="module")
def spawned_run(tmp_path_factory) -> Path:
    return record(tmp_path_factory.mktemp("many"), "spawn")


def roles(folder: Path) -> dict[str, dict]:
    """Each trace's header by the part it plays: root, worker, subprocess (and forkserver)."""
    headers = [p.header for p in open_folder(str(folder))]
    [root] = [h for h in headers if "ppid" not in h]
    found = {"root": root}
    for h in headers:
        command = " ".join(h["argv"])
        if "asyncio_child.py" in command:
            found["subprocess"] = h
        elif "forkserver import main" in command:
            found["forkserver"] = h
        elif h is not root:
            found["worker"] = h
    return found


@pytest.mark.timeout(180)
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_every_process_traces_into_the_folder_linked_by_its_parent(tmp_path, capsys, method):
    folder = record(tmp_path, method)
    found = roles(folder)
    expected = {"root", "worker", "subprocess"} | ({"forkserver"} if method == "forkserver" else set())
    assert set(found) == expected
    assert len(list(folder.glob("*.jsonl"))) == len(expected)   # nothing else: no resource tracker
    root = found["root"]
    worker_parent = found["forkserver"] if method == "forkserver" else root
    assert found["worker"]["ppid"] == worker_parent["pid"]
    assert found["worker"]["parent"] == f"{worker_parent['pid']}.jsonl"
    assert found["subprocess"]["ppid"] == root["pid"]
    assert found["subprocess"]["argv"][1:] == ["an argument"]
    for h in found.values():
        assert (folder / f"{h['pid']}.jsonl").is_file()
    capsys.readouterr()
    assert main(["summary", "--json", str(folder)]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    by_pid = {p["pid"]: p for p in summary["processes"]}
    for role, (fn, file) in STALLS.items():
        stalls = by_pid[found[role]["pid"]]["summary"]["stalls"]
        mine = [s for s in stalls if s["fn"] == fn]
        assert len(mine) == 1 and mine[0]["file"].endswith(file), (role, stalls)
        others = {f for f, _ in STALLS.values()} - {fn}
        assert not [s for s in stalls if s["fn"] in others], (role, stalls)
    combined = {(s["pid"], s["fn"]) for s in summary["stalls"]}
    assert {(found[role]["pid"], fn) for role, (fn, _) in STALLS.items()} <= combined


def test_summary_text_lists_each_process_and_every_stall_on_one_timeline(spawned_run):
    proc = run_loopscope(spawned_run.parent, "summary", str(spawned_run))
    assert proc.returncode == 0, proc.stderr
    found = roles(spawned_run)
    text = proc.stdout
    assert text.startswith("3 processes over ")
    assert "multiprocessing worker (spawned)" in text and "asyncio_child.py an argument" in text
    stall_lines = text.split("longest first, at the time on the run's timeline:")[1].split("\n\n")[0]
    for role, (fn, file) in STALLS.items():
        [line] = [line for line in stall_lines.splitlines() if fn in line]
        assert f" {found[role]['pid']} " in line and file in line
    for h in found.values():
        assert f"== pid {h['pid']} ({h['pid']}.jsonl)" in text
    assert "on asyncio" in text   # the subprocess's own summary, in its runtime's words


def test_export_gives_perfetto_one_process_per_pid(spawned_run, tmp_path):
    out = tmp_path / "run.chrome.json"
    proc = run_loopscope(tmp_path, "export", str(spawned_run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    events = orjson.loads(out.read_bytes())["traceEvents"]
    found = roles(spawned_run)
    pids = {h["pid"] for h in found.values()}
    assert {e["pid"] for e in events} == pids
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert set(names) == pids and all(n.startswith(f"pid {p}: ") for p, n in names.items())
    for role, (fn, _) in STALLS.items():
        slices = [e for e in events if e.get("ph") == "X" and e["name"].endswith(f".{fn}")]
        assert {e["pid"] for e in slices} == {found[role]["pid"]}
    flows: dict[int, set[int]] = {}
    for e in events:
        if e.get("ph") in ("s", "f"):
            flows.setdefault(e["id"], set()).add(e["pid"])
    assert flows and all(len(p) == 1 for p in flows.values())   # no arrow joins two processes
    # one timeline: the subprocess's stall is later than the parent's start by its own offset
    starts = {p.pid: p.offset_ns for p in open_folder(str(spawned_run))}
    [child_stall] = [e for e in events if e.get("ph") == "X" and e["name"].endswith(".child_blocks")]
    assert child_stall["ts"] >= starts[found["subprocess"]["pid"]] / 1000


def test_otlp_export_of_a_folder_is_one_trace_with_a_resource_per_process(spawned_run, collector,
                                                                          tmp_path):
    """Sent to a real OTLP/HTTP receiver and decoded with opentelemetry-proto: one trace id,
    each process its own resource (with its parent's pid) and span ids unique in the trace;
    each process's stall is a span of its own resource.  The JSON file has the same spans."""
    endpoint, received = collector
    proc = run_loopscope(tmp_path, "export", "--format", "otlp", "--endpoint", endpoint,
                         str(spawned_run))
    assert proc.returncode == 0, proc.stderr
    found = roles(spawned_run)
    assert f"3 metrics of each of {len(found)} processes" in proc.stderr
    resources: dict[int, dict] = {}
    spans_of: dict[int, list] = {}
    for path, body, _type in received:
        if path != "/v1/traces":
            continue
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = attrs(rs.resource)
            pid = resource["process.pid"]
            resources[pid] = resource
            spans_of.setdefault(pid, []).extend(s for ss in rs.scope_spans for s in ss.spans)
    assert set(resources) == {h["pid"] for h in found.values()}
    for h in found.values():
        assert resources[h["pid"]].get("process.parent_pid") == h.get("ppid")
    spans = [s for group in spans_of.values() for s in group]
    assert len({s.trace_id for s in spans}) == 1
    assert len({s.span_id for s in spans}) == len(spans)
    for role, (fn, _file) in STALLS.items():
        blocked = [s for s in spans_of[found[role]["pid"]]
                   if s.name.startswith("blocked: ") and s.name.endswith(fn)]
        assert blocked, role
    metrics = [ExportMetricsServiceRequest.FromString(body) for path, body, _ in received
               if path == "/v1/metrics"]
    assert [len(m.resource_metrics) for m in metrics] == [len(found)]

    out = tmp_path / "run.otlp.jsonl"
    proc = run_loopscope(tmp_path, "export", "--format", "otlp", str(spawned_run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    in_file = [s for request in lines[:-1] for rs in request["resourceSpans"]
               for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(in_file) == len(spans)


def test_a_folder_without_traces_is_one_line_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a trace\n")
    for command in (["summary"], ["export"], ["replay"], ["summary", "--json"]):
        proc = run_loopscope(tmp_path, *command, str(empty))
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.strip().splitlines() == [
            f"loopscope: error: {empty} holds no loopscope trace (no readable *.jsonl file)"]
    assert sorted(os.listdir(tmp_path)) == ["empty"]   # export wrote nothing


def test_a_broken_file_in_a_folder_is_a_warning_naming_it(spawned_run, tmp_path):
    folder = tmp_path / "with-broken"
    folder.mkdir()
    for trace in spawned_run.glob("*.jsonl"):
        (folder / trace.name).write_bytes(trace.read_bytes())
    (folder / "broken.jsonl").write_text("this is not JSON\n")
    (folder / "empty.jsonl").write_text("")
    proc = run_loopscope(tmp_path, "summary", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("3 processes over ")
    warnings = proc.stderr.strip().splitlines()
    assert warnings == [
        (f"loopscope: warning: {folder}/broken.jsonl is not a loopscope trace (its first line is "
         f"not a trace header); left out"),
        f"loopscope: warning: {folder}/empty.jsonl is empty, not a trace; left out"]
    assert "Traceback" not in proc.stderr


def test_run_refuses_a_folder_that_holds_another_runs_traces(spawned_run, tmp_path):
    proc = run_loopscope(tmp_path, "run", "-o", f"{spawned_run}/", str(APP), "spawn")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"loopscope: error: the trace folder {spawned_run}/ already holds traces")


CHILDREN_APP = """
    import json, os, subprocess, sys
    # A program that is not Python runs unchanged, and is not traced.
    shell = subprocess.run(["/bin/sh", "-c", 'echo "sh got $1"', "sh", "its argument"],
                           capture_output=True, text=True, check=True)
    print(shell.stdout.strip())
    # A Python child: its own argv and sys.path, the user's sitecustomize still runs.
    child = subprocess.run([sys.executable, "-c", "import json, sys, sitecustomize; "
                            "print(json.dumps([sys.argv, sys.path, sitecustomize.MARK]))",
                            "x", "y"], capture_output=True, text=True, check=True)
    print(child.stdout.strip())
"""


def test_a_python_child_keeps_its_argv_path_and_sitecustomize_and_others_run_unchanged(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("MARK = 'the user sitecustomize ran'\n")
    app = tmp_path / "children.py"
    app.write_text(textwrap.dedent(CHILDREN_APP))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(own), str(ROOT)])}
    proc = run_loopscope(tmp_path, "run", "-o", "out/", str(app), env=env)
    assert proc.returncode == 0, proc.stderr
    shell_line, child_line = proc.stdout.strip().splitlines()
    assert shell_line == "sh got its argument"
    argv, path, mark = orjson.loads(child_line)
    assert argv == ["-c", "x", "y"]
    assert mark == "the user sitecustomize ran"
    assert BOOT_DIR not in path and str(own) in path and str(ROOT) in path
    traces = open_folder(str(tmp_path / "out"))
    assert len(traces) == 2            # the app and its Python child; the shell is not traced
    [child] = [t for t in traces if t.ppid is not None]
    assert child.header["argv"][:1] == ["-c"] and child.header["argv"][-2:] == ["x", "y"]


IGNORING_CHILDREN_APP = """
    import subprocess, sys
    # Python children that read no PYTHONPATH: loopscope.pth traces them all the same.
    for flag in ("-E", "-I"):
        subprocess.run([sys.executable, flag, "-c", "import json, sys; print(json.dumps(sys.path))"],
                       check=True)
"""


def test_a_python_child_that_ignores_the_environment_is_traced_and_keeps_its_path(tmp_path):
    proc = run_into_folder(tmp_path, "ignoring.py", IGNORING_CHILDREN_APP)
    assert proc.returncode == 0, proc.stderr
    for path in map(orjson.loads, proc.stdout.splitlines()):
        assert BOOT_DIR not in path and str(ROOT) not in path   # PYTHONPATH stays ignored
    parent, *children = open_folder(str(tmp_path / "out"))
    assert sorted(child.header["argv"][0] for child in children) == ["-E", "-I"]  # one trace each
    for child in children:
        assert child.ppid == parent.pid and child.header["parent"] == f"{parent.pid}.jsonl"


def test_loopscope_pth_changes_nothing_in_a_program_that_is_not_traced(tmp_path):
    """The .pth runs at every start of a Python program in loopscope's environment: without
    LOOPSCOPE_PARENT_TRACE, the program imports no tracer module, and starts (its modules, its
    path, its output) as it does in an environment without the .pth."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    show = "import json, sys; print(json.dumps([sorted(sys.modules), sys.path]))"
    installed = Path(sysconfig.get_paths()["purelib"]) / "loopscope.pth"
    assert installed.is_file()
    bare = tmp_path / "bare"   # an environment of its own, with and then without the .pth
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    [site] = bare.glob("lib/python*/site-packages")
    # Reading any .pth file costs what site does for it (Python 3.13 reads them with the
    # utf-8-sig codec, one module more): the environment without ours has another one.
    (site / "another.pth").write_text("# a .pth file that adds nothing\n")

    def start(python: str, flags: list[str]) -> tuple[list, str]:
        proc = subprocess.run([python, *flags, "-c", show], capture_output=True, text=True,
                              env=env, cwd=tmp_path, check=True)
        return orjson.loads(proc.stdout), proc.stderr

    for flags in ([], ["-E"], ["-I"]):
        (modules, _), stderr = start(sys.executable, flags)
        assert "tracer" not in modules and stderr == "", flags
        without = start(str(bare / "bin" / "python"), flags)
        (site / installed.name).write_bytes(installed.read_bytes())
        assert start(str(bare / "bin" / "python"), flags) == without, flags
        (site / installed.name).unlink()


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_a_child_that_ignores_the_environment_runs_whatever_its_environment_says(tmp_path, flag):
    """LOOPSCOPE_PARENT_TRACE not JSON: the child runs untraced and silent; naming a folder the
    child cannot write into: untraced, with one warning line; set by another installation (its
    own boot directory on PYTHONPATH): untraced and silent."""
    def parent(folder: Path) -> str:
        return orjson.dumps({"trace": str(folder / "1.jsonl"), "folder": True, "pid": 1,
                             "threshold_ms": 50}).decode()

    other = str(tmp_path / "other" / "tracer" / "_boot")
    for value, path, warnings in (("not JSON {", BOOT_DIR, 0),
                                  (parent(tmp_path / "missing"), BOOT_DIR, 1),
                                  (parent(tmp_path), other, 0)):
        env = {**os.environ, ENV: value, "PYTHONPATH": path}
        proc = subprocess.run([sys.executable, flag, "-c", "print('ran')"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)
        assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == warnings and all("is not traced: " in line for line in lines), lines
    assert list(tmp_path.iterdir()) == []   # no trace


def test_a_single_process_run_writes_one_file(tmp_path):
    app = tmp_path / "alone.py"
    app.write_text("print('alone')\n")
    proc = run_loopscope(tmp_path, "run", "-o", "t.jsonl", str(app))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["alone.py", "t.jsonl"]
    proc = run_loopscope(tmp_path, "run", str(app))   # the default: a folder of one file
    [folder] = list((tmp_path / "traces").iterdir())
    assert folder.name.startswith("alone-") and folder.name.endswith(".local")
    assert [p.name for p in folder.iterdir()] == [f"{open_folder(str(folder))[0].pid}.jsonl"]
    assert f"trace written to {Path('traces') / folder.name}/ (1 process, one file each)" \
        in proc.stderr


FORKED_ASYNCIO_APP = """
    import asyncio, multiprocessing, time

    def worker_blocks():
        time.sleep(0.15)

    async def work():
        asyncio.get_running_loop().call_later(0.05, worker_blocks)
        await asyncio.sleep(0.3)

    def worker():
        asyncio.run(work())

    async def main():   # the parent forks from inside its own running asyncio loop
        process = multiprocessing.get_context("fork").Process(target=worker)
        process.start()
        while process.exitcode is None:
            await asyncio.sleep(0.05)
        assert process.exitcode == 0

    if __name__ == "__main__":
        asyncio.run(main())
"""


def test_a_forked_worker_on_asyncio_records_its_own_loop(tmp_path):
    proc = run_into_folder(tmp_path, "forked_asyncio.py", FORKED_ASYNCIO_APP)
    assert proc.returncode == 0, proc.stderr
    parent, child = open_folder(str(tmp_path / "out"))
    assert child.ppid == parent.pid and child.header["forked"] is True
    assert child.program == f"forked from {parent.pid}: forked_asyncio.py"
    summary = summarize(child.path)
    assert [s["fn"] for s in summary["stalls"]] == ["worker_blocks"]
    assert "worker_blocks" not in [s["fn"] for s in summarize(parent.path)["stalls"]]


def test_with_a_trace_file_a_python_childs_trace_goes_beside_it(tmp_path):
    app = tmp_path / "starts.py"
    app.write_text("import subprocess, sys\n"
                   "subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], check=True)\n")
    proc = run_loopscope(tmp_path, "run", "-o", "t.jsonl", str(app))
    assert proc.returncode == 0, proc.stderr
    child_pid = int(proc.stdout)
    assert sorted(os.listdir(tmp_path)) == sorted(["starts.py", "t.jsonl", f"t.{child_pid}.jsonl"])
    parent, child = open_folder(str(tmp_path))   # the directory reads as their folder
    assert (parent.name, child.name) == ("t.jsonl", f"t.{child_pid}.jsonl")
    assert child.header["ppid"] == parent.pid and child.header["parent"] == "t.jsonl"


def test_a_traced_child_imports_no_more_than_it_needs(tmp_path):
    """A Python child that never uses asyncio is traced without importing it (its adapter
    waits for the import), nor importlib.abc, typing, socket or the trace reader: each cost
    every traced child's start (unless the interpreter imports it untraced too, as an
    editable install's path finder may)."""
    app = tmp_path / "starts_a_child.py"
    app.write_text(textwrap.dedent("""
        import subprocess, sys
        WATCHED = ('asyncio', 'importlib.abc', 'typing', 'socket', 'tracer.reader',
                   'tracer.session')
        subprocess.run([sys.executable, "-c", "import sys; print(sorted(m for m in sys.modules"
                        f" if m in {WATCHED!r}))"], check=True)
    """))
    untraced = subprocess.run([sys.executable, str(app)], capture_output=True, text=True,
                              check=True, cwd=tmp_path).stdout
    proc = run_loopscope(tmp_path, "run", "-o", f"{tmp_path / 'run'}/", str(app))
    assert proc.returncode == 0, proc.stderr
    imported = set(eval(proc.stdout.strip().splitlines()[-1]))
    assert imported - set(eval(untraced.strip())) == {"tracer.session"}  # traced, and nothing more
    assert len(open_folder(str(tmp_path / "run"))) == 2


OWN_ENVIRONMENT_APP = """
    import subprocess, sys
    # Python children given an environment of their own, without loopscope's variables: the
    # registry traces them.  The second starts a grandchild, which inherits its environment.
    grandchild = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'])"
    for flags, code in (([], "pass"), (["-I"], "pass"), ([], grandchild)):
        subprocess.run([sys.executable, *flags, "-c", code], env={"PATH": "/usr/bin:/bin"},
                       check=True)
"""


def test_a_python_child_given_its_own_environment_is_traced(tmp_path):
    proc = run_into_folder(tmp_path, "own_env.py", OWN_ENVIRONMENT_APP)
    assert proc.returncode == 0, proc.stderr
    traces = open_folder(str(tmp_path / "out"))
    [parent] = [t for t in traces if t.ppid is None]
    children = [t for t in traces if t.ppid == parent.pid]
    assert sorted(" ".join(c.header["argv"]) for c in children) == sorted(
        ["-c pass", "-I -c pass", "-c import subprocess, sys; subprocess.run([sys.executable, "
         "'-c', 'pass'])"])
    [middle] = [c for c in children if "subprocess" in c.header["argv"][-1]]
    assert [t.header["argv"] for t in traces if t.ppid == middle.pid] == [["-c", "pass"]]
    from tracer.spawned import registry
    assert not os.path.exists(os.path.join(registry(), str(parent.pid)))  # removed at the end


@pytest.mark.parametrize("same_process", [True, False])
def test_a_registry_file_of_another_process_under_the_same_pid_is_ignored(tmp_path, same_process):
    """A traced process killed before it removed its file leaves it behind, and its pid may
    be reused: the file records when its process started, and a child of another process
    under that pid is not traced (the child of the process that wrote it is)."""
    from tracer.spawned import _started, registry, registry_entry
    folder = registry()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "time.sleep(0.5); subprocess.run([sys.executable, '-c', "
                               "'import os; print(os.environ.get(\"" + ENV + "\"))'])"],
                              stdout=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"})
    value = orjson.dumps({"trace": str(tmp_path / f"{parent.pid}.jsonl"), "folder": True,
                          "pid": parent.pid, "threshold_ms": 50}).decode()
    entry = Path(folder) / str(parent.pid)
    started = _started(parent.pid) if same_process else "1"
    entry.write_bytes(registry_entry(value, started))
    try:
        out, _ = parent.communicate(timeout=60)
    finally:
        entry.unlink()
    if same_process:  # traced: its own ENV names it, and its trace is in the parent's folder
        assert orjson.loads(out)["pid"] != parent.pid and len(list(tmp_path.iterdir())) == 1
    else:
        assert out == "None\n" and list(tmp_path.iterdir()) == []


STOPS_TRACING_APP = """
    import os, subprocess, sys
    import tracer
    from tracer.spawned import BOOT_DIR, ENV
    subprocess.run([sys.executable, "-c", "pass"], check=True)   # traced: a child
    tracer.stop()
    assert ENV not in os.environ, os.environ[ENV]
    assert BOOT_DIR not in os.environ.get("PYTHONPATH", "").split(os.pathsep)
    print("PYTHONPATH", os.environ.get("PYTHONPATH"))
    # Not traced now, with the environment kept or given: the run is over.
    subprocess.run([sys.executable, "-c", "import sys; sys.exit(0)"], check=True)
    subprocess.run([sys.executable, "-c", "import sys; sys.exit(0)"], env={"PATH": "/usr/bin:/bin"},
                   check=True)
"""


def test_the_children_started_after_tracing_stopped_are_not_traced(tmp_path):
    proc = run_into_folder(tmp_path, "stops.py", STOPS_TRACING_APP)
    assert proc.returncode == 0, proc.stderr
    assert f"PYTHONPATH {ROOT}\n" in proc.stdout  # as it was before loopscope run
    traces = open_folder(str(tmp_path / "out"))
    [parent] = [t for t in traces if t.ppid is None]
    assert [t.header["argv"] for t in traces if t is not parent] == [["-c", "pass"]]
