"""``pip install`` works without a C compiler, and the install then traces with the Python probe.

A copy of the project (without build output, so nothing compiled earlier is reused) is
installed into a fresh venv with ``CC=/bin/false``: the compiler exists but fails, as a missing
one does.  The runtime dependencies come from this environment (a ``.pth`` file), so that only
setuptools, for the isolated build, is fetched from the package index.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ["pyproject.toml", "setup.py", "README.md", "loopscope", "reactor", "tracer", "tui",
           "examples"]
BUILD_OUTPUT = shutil.ignore_patterns("*.so", "__pycache__", "build", "*.egg-info")


@pytest.mark.timeout(300)
def test_install_without_a_compiler_then_trace_and_summarise(tmp_path):
    source = tmp_path / "loopscope"
    source.mkdir()
    for name in PROJECT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=BUILD_OUTPUT)
        else:
            shutil.copy(path, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "CC": "/bin/false"}
    env.pop("LOOPSCOPE_PROBE", None)
    env.pop("PYTHONPATH", None)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", str(source)],
                             capture_output=True, text=True, env=env, timeout=240)
    assert install.returncode == 0, install.stdout + install.stderr
    [site] = venv.glob("lib/python*/site-packages")
    assert (site / "tracer" / "pyprobe.py").exists()
    assert (site / "loopscope.pth").is_file()   # in the wheel's root (setup.py)
    assert not list(site.glob("tracer/_native*.so"))
    (site / "runtime-dependencies.pth").write_text(
        "\n".join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}) + "\n")

    def installed(*args: str) -> str:  # run from tmp_path: no project sources on the path
        proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    probe = installed(str(venv / "bin" / "python"), "-c",
                      "from tracer import backend; print(backend.probe_backend())")
    assert probe.strip() == "pure Python (the C extension is not built)"
    trace = tmp_path / "t.jsonl"
    installed(str(venv / "bin" / "loopscope"), "run", "-o", str(trace),
              str(source / "examples" / "blocking_server.py"))
    summary = orjson.loads(installed(str(venv / "bin" / "loopscope"), "summary", "--json",
                                     str(trace)))
    assert {"__main__.SlowEcho.dataReceived", "__main__.parse_reply", "__main__.crunch"} <= {
        row["fn"] for row in summary["blocking"]}
    assert summary["dropped"] == 0
