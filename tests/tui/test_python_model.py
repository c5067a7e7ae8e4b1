"""The dashboard on the Python model (tracer.model.TraceModel), as where tracer._scan is not
built: the same screens as on the compiled one, at the end and after seeking back."""

from __future__ import annotations

import asyncio

import pytest

from tracer import indexed
from tracer.indexed import IndexedModel
from tracer.model import TraceModel
from tui_support import ROOT, loaded, replay_app, still

DEMO_TRACE = ROOT / "traces" / "demo.jsonl"


def screens(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[type, list[str]]:
    """The model's type and the screens at the end, after ``home``, ``n`` and ``n``."""
    with monkeypatch.context() as patch:
        if not compiled:
            patch.setattr(indexed, "usable", lambda header: False)

        async def main() -> tuple[type, list[str]]:
            app = replay_app(DEMO_TRACE)
            shots = []
            async with app.run_test(size=(160, 48)) as pilot:
                await loaded(pilot)
                await still(pilot)
                shots.append(app.export_screenshot())
                for key in ("home", "n", "n"):
                    await pilot.press(key)
                    await still(pilot)
                    shots.append(app.export_screenshot())
            return type(app.feed.model), shots

        return asyncio.run(main())


def test_the_python_model_shows_what_the_compiled_one_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    if not indexed.usable({}):
        pytest.skip("tracer._scan is not built: there is only the Python model")
    compiled_model, compiled_shots = screens(True, monkeypatch)
    python_model, python_shots = screens(False, monkeypatch)
    assert (compiled_model, python_model) == (IndexedModel, TraceModel)
    assert python_shots == compiled_shots
