"""A worker forked by a Twisted program records its own reactor into its own trace."""

import pytest
from twisted_support import app, events, line_of, loopscope

from tracer.folder import open_folder

PROGRAM = app("forked_worker.py")


@pytest.mark.timeout(180)
def test_a_forked_worker_traces_its_own_reactor(tmp_path):
    folder = tmp_path / "run"
    done = loopscope("run", "-o", f"{folder}/", str(PROGRAM))
    assert done.returncode == 0, done.stderr
    assert "worker exit status 0" in done.stdout
    traces = open_folder(str(folder))
    [parent] = [p for p in traces if p.ppid is None]
    [worker] = [p for p in traces if p.ppid == parent.pid]
    for trace, mine, other in ((parent, "parent_blocks", "worker_blocks"),
                               (worker, "worker_blocks", "parent_blocks")):
        found = events(trace.path)
        assert found[-1]["ev"] == "end" and found[-1]["hook_errors"] == 0
        assert [e["name"] for e in found if e["ev"] == "runtime"] == ["twisted"]
        [stall] = {e["name"]: e for e in found if e["ev"] == "stall"}.values()
        assert stall["name"] == f"__main__.{mine}"
        assert stall["stack"][-1][1] == line_of(PROGRAM, f"# the {mine.split('_')[0]}'s stall")
        timers = {e["name"] for e in found if e["ev"] == "call" and e["kind"] == "timer"}
        assert f"__main__.{mine}" in timers and f"__main__.{other}" not in timers
