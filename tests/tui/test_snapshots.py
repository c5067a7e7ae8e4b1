"""Snapshots of the dashboard at 160x48 and 80x24 (update deliberately with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_support import ROOT, loaded, replay_app, still, until

BIG, SMALL = (160, 48), (80, 24)


async def _ready(pilot) -> None:
    await loaded(pilot)


@pytest.mark.parametrize("size", [pytest.param(BIG, id="160x48"),
                                  pytest.param(SMALL, id="80x24")])
@pytest.mark.parametrize("keys", [
    pytest.param((), id="blocking"),
    pytest.param(("2",), id="callbacks"),
    pytest.param(("3",), id="events"),
    pytest.param(("5",), id="deferreds"),
])
def test_views(snap_compare, fixed_trace: Path, keys: tuple[str, ...],
               size: tuple[int, int]) -> None:
    async def shown(pilot) -> None:
        """The view once it took the focus and showed what it holds: the detail of its
        selection and the scrollbar's move to the selected row come with later redraws,
        so the picture waits until the screen stops changing instead of being taken
        between them depending on the machine's speed."""
        app = await loaded(pilot)
        await pilot.press(*keys)
        await until(pilot, lambda: app.focused is not None)
        app.refresh_view(force=True)
        await still(pilot)
    assert snap_compare(replay_app(fixed_trace), terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", [pytest.param(BIG, id="160x48"),
                                  pytest.param(SMALL, id="80x24")])
def test_mid_stall_shows_the_banner(snap_compare, fixed_trace: Path,
                                    size: tuple[int, int]) -> None:
    async def at_stall(pilot) -> None:
        await loaded(pilot)
        await pilot.press("g", *"1.2s", "enter")      # inside the 250 ms dataReceived
    assert snap_compare(replay_app(fixed_trace), terminal_size=size, run_before=at_stall)


def test_warnings_of_the_demo_trace(snap_compare) -> None:
    assert snap_compare(replay_app(ROOT / "traces" / "demo.jsonl"), press=("7",),
                        terminal_size=BIG, run_before=_ready)
