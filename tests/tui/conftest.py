"""Fixtures for the dashboard tests (helpers live in tui_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_support import write_fixed_trace


@pytest.fixture
def fixed_trace(tmp_path: Path) -> Path:
    """The deterministic trace of tui_support.write_fixed_trace, named
    fixed.jsonl (the name shows in the header, so snapshots depend on it)."""
    return write_fixed_trace(tmp_path / "fixed.jsonl")
