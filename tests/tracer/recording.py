"""Recording a small app with ``loopscope run`` for tests that read what it did."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def record_app(work: Path, source: str) -> Path:
    """Write ``source`` (dedented) as ``work/app.py``, run it traced from ``work`` (with the
    probe the environment's LOOPSCOPE_PROBE picks) and return its trace."""
    (work / "app.py").write_text(textwrap.dedent(source))
    path = work / "app.jsonl"
    proc = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(path), "app.py"],
                          cwd=work, capture_output=True, text=True, timeout=60, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return path
