"""Seed program 3 (examples/deferreds.py), run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(40)
def test_deferreds_example_runs_both_chains_and_refuses_a_second_fire() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "deferreds.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok_callback: got 'the reply'",
        "common_callback: got 'THE REPLY'",
        "err_callback: got ConnectionRefusedError: server said no",
        "common_callback: got 'fallback text'",
        "second callback on the same Deferred: AlreadyCalledError",
        "reactor stopped",
    ]
    assert done.stderr == ""
