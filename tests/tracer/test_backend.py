"""Which probe records: the C extension when built, else pure Python; LOOPSCOPE_PROBE forces one.

"Not built" is made real in a fresh interpreter by blocking the import of tracer._native
(``sys.modules["tracer._native"] = None``, which makes ``import`` raise ImportError).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tracer import backend

ROOT = Path(__file__).resolve().parents[2]
WITHOUT_C = "import sys; sys.modules['tracer._native'] = None\n"


def python(code: str, probe: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(backend.ENV, None)
    if probe is not None:
        env[backend.ENV] = probe
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)


def test_the_c_probe_is_the_default_when_built(monkeypatch):
    monkeypatch.delenv(backend.ENV, raising=False)
    if importlib.util.find_spec("tracer._native") is None:  # this install has no compiler
        assert backend.probe_backend() == "pure Python (the C extension is not built)"
        return
    assert backend.probe_backend() == "C extension"
    assert backend.probe_module().__name__ == "tracer._native"
    monkeypatch.setenv(backend.ENV, "c")
    assert backend.probe_module().__name__ == "tracer._native"


def test_the_python_probe_can_be_forced(monkeypatch):
    monkeypatch.setenv(backend.ENV, "python")
    assert backend.probe_backend() == "pure Python (LOOPSCOPE_PROBE=python)"
    assert backend.probe_module().__name__ == "tracer.pyprobe"


def test_a_probe_that_does_not_exist_is_refused(monkeypatch):
    monkeypatch.setenv(backend.ENV, "rust")
    with pytest.raises(backend.BackendError, match="LOOPSCOPE_PROBE must be 'c' or 'python', not 'rust'"):
        backend.probe_module()


def test_without_the_extension_the_python_probe_records(tmp_path):
    trace = tmp_path / "t.jsonl"
    proc = python(WITHOUT_C + f"""
import tracer
from reactor import defer
from tracer import backend
print(backend.probe_backend())
tracer.start({str(trace)!r})
defer.succeed(1).addCallback(lambda r: r)
tracer.stop()
print(sorted(name for name, module in sys.modules.items()
             if name.startswith("tracer.") and module is not None))
""")
    assert proc.returncode == 0, proc.stderr
    description, modules = proc.stdout.splitlines()
    assert description == "pure Python (the C extension is not built)"
    assert "tracer.pyprobe" in modules and "tracer._native" not in modules
    kinds = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    assert [k[0] for k in kinds if isinstance(k, list)] == ["dnew", "dfire", "dadd", "dcall"]


def test_forcing_the_c_probe_without_the_extension_is_one_clear_error(tmp_path):
    proc = python(WITHOUT_C + f"""
import tracer
from tracer import backend
try:
    tracer.start({str(tmp_path / "t.jsonl")!r})
except backend.BackendError as e:
    print(e)
""", probe="c")
    assert proc.returncode == 0, proc.stderr
    [message] = proc.stdout.splitlines()
    assert message.startswith("LOOPSCOPE_PROBE=c, but the C extension tracer._native is not built")
    assert message.endswith("reinstall with a C compiler or set LOOPSCOPE_PROBE=python")
    assert not (tmp_path / "t.jsonl").exists()


def test_choosing_and_reading_never_load_a_probe():
    proc = python("""
import sys
import tracer.backend
after_backend = {"tracer._native", "tracer.pyprobe"} & set(sys.modules)
import tracer.reader, tracer.model, tracer.summary, tracer.export
print(sorted(after_backend), "tracer._native" in sys.modules)
""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "False"]
