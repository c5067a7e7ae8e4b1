"""Snapshots of the main views on the fixed trace (update deliberately with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_support import loaded, replay_app


async def _ready(pilot) -> None:
    await loaded(pilot)


@pytest.mark.parametrize("keys", [
    pytest.param((), id="blocking"),
    pytest.param(("3",), id="events"),
    pytest.param(("5",), id="deferreds"),
])
def test_views(snap_compare, fixed_trace: Path, keys: tuple[str, ...]) -> None:
    assert snap_compare(replay_app(fixed_trace), press=keys, terminal_size=(120, 36),
                        run_before=_ready)


def test_80x24_mid_block_shows_the_banner(snap_compare, fixed_trace: Path) -> None:
    async def at_stall(pilot) -> None:
        await loaded(pilot)
        await pilot.press("g", *"1.2s", "enter")      # inside the 250 ms dataReceived
    assert snap_compare(replay_app(fixed_trace), terminal_size=(80, 24), run_before=at_stall)
