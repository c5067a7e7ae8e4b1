"""The dashboard's two small modal screens: help (every key) and go-to-time."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class HelpScreen(ModalScreen[None]):
    """Lists every key the dashboard answers to; any of esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close help"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _ in self._keys) + 2
        listing = Text()
        for key, description in self._keys:
            listing.append(key.ljust(width), style="bold")
            listing.append(description + "\n")
        with VerticalScroll(id="help-box"):
            yield Label(Text("loopscope keys  (esc closes)", style="bold"))
            yield Static(listing, id="help-keys")


class GoToScreen(ModalScreen["tuple[str, int] | None"]):
    """Asks where to go and dismisses with ``("time", ns)`` or
    ``("event", n)`` (see :func:`parse_position`), or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="goto-box"):
            yield Label("Go to time (12.5s, 300ms, #event):")
            yield Input(placeholder="e.g. 1.5s", id="goto-input")
            yield Label("", id="goto-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = parse_position(event.value)
        if value is None:
            self.query_one("#goto-error", Label).update(
                Text(f"not a time: {event.value[:40]!r}"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


_UNITS = (("ms", 1_000_000), ("us", 1_000), ("µs", 1_000), ("ns", 1), ("s", 1_000_000_000))


def parse_position(raw: str) -> tuple[str, int] | None:
    """``12.5`` or ``12.5s`` (seconds), ``300ms``, ``40us`` -> ``("time", ns)``;
    ``#1234`` -> ``("event", 1234)``; anything else -> None."""
    text = raw.strip().lower()
    if text.startswith("#"):
        return ("event", int(text[1:])) if text[1:].isdigit() else None
    scale = 1_000_000_000
    for suffix, factor in _UNITS:
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)].strip(), factor
            break
    try:
        value = float(text)
    except ValueError:
        return None
    if not 0 <= value < math.inf:   # refuses nan too
        return None
    return ("time", int(value * scale))
