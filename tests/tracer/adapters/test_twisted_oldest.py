"""The oldest Twisted the adapter supports, installed from PyPI into a venv of its own, traces
a program with thread work, a LoopingCall and an unhandled failure.

Slow on purpose (marked ``timeout``): the venv is made on the first run (pip, from the package
index; about a minute) and kept in the temporary directory for the next runs, which take a
few seconds.  A venv that does not import the expected release is made again.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from twisted_support import app, callbacks, line_of, run_traced, summary

from tracer.adapters.twisted_reactor import OLDEST_SUPPORTED

VENV = Path(tempfile.gettempdir()) / f"loopscope-twisted-{OLDEST_SUPPORTED}"
PYTHON = VENV / "bin" / "python"


def venv_with_oldest_twisted() -> Path:
    check = [str(PYTHON), "-c", "import orjson, twisted; print(twisted.__version__)"]
    if PYTHON.exists():
        found = subprocess.run(check, capture_output=True, text=True)
        if found.stdout.strip() == OLDEST_SUPPORTED:
            return PYTHON
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", f"twisted=={OLDEST_SUPPORTED}",
                    "orjson"], check=True, capture_output=True, timeout=600)
    assert subprocess.run(check, capture_output=True, text=True).stdout.strip() == OLDEST_SUPPORTED
    return PYTHON


@pytest.mark.timeout(900)
def test_the_oldest_supported_twisted_is_traced(tmp_path):
    python = str(venv_with_oldest_twisted())
    program = app("threads_loop.py")
    trace = tmp_path / "oldest.jsonl"
    # loopscope itself comes from this checkout (PYTHONPATH; its C extension is built in place)
    done = run_traced(trace, program, python=python)
    found = summary(trace, python=python)
    [heartbeat] = callbacks(found, "__main__.heartbeat")
    assert heartbeat["kind"] == "timer" and heartbeat["count"] >= 5
    [unhandled] = found["deferreds"]["unhandled"]
    assert (unhandled["exc"], unhandled["fn"], unhandled["line"]) == (
        "KeyError", "__main__.lookup", line_of(program, "d = defer.Deferred()"))
    assert "Unhandled error in Deferred" in done.stdout
    assert not [b for b in found["blocking"] if "blocking_io" in b["fn"]]
    assert found["deferreds"]["fired"] <= found["deferreds"]["created"]  # each fire counted once
