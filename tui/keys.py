"""Every key of the dashboard, defined once as plain data.

All of them are the App's (the App sees them before the focused widget does, and hands them back
to the filter box while a query is being typed); keys a focused widget answers are only listed,
in :data:`WIDGET_KEYS`.

The App builds its Textual bindings from :data:`KEYS`, its help screen lists them, and the CLI
prints :func:`help_text` under ``--help`` of each command that opens the dashboard.  This module
imports nothing from Textual, so ``--help`` stays quick and works without loading the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

VIEWS = ("blocking", "callbacks", "events", "descriptors", "deferreds", "threads", "warnings")


@dataclass(frozen=True)
class Key:
    """One key: ``key`` in Textual's names (comma-separated for several), the App's ``action``,
    a ``description`` for the help screen.  ``footer``: its short label in the Footer (None:
    not shown there).  ``display``: how the key is written for people (default ``key``).
    ``brief``: its phrase in :func:`help_text`; keys sharing a phrase are listed together
    (``n/N next/previous blocking call``); None leaves it to the help screen."""

    key: str
    action: str
    description: str
    footer: str | None = None
    display: str | None = None
    brief: str | None = None

    @property
    def shown_as(self) -> str:
        return self.display or self.key


KEYS: tuple[Key, ...] = (
    Key("space", "play_pause", "Play or pause the replay", "Play/pause", brief="play/pause"),
    Key("plus,equals_sign", "faster", "Replay faster (up to max)", "Faster", "+", "speed"),
    Key("minus", "slower", "Replay slower (down to 0.1x)", "Slower", "-", "speed"),
    Key("left", "step(-1)", "Step back one event", brief="step"),
    Key("right", "step(1)", "Step forward one event", brief="step"),
    Key("shift+left", "jump(-1)", "Back one second"),
    Key("shift+right", "jump(1)", "Forward one second"),
    Key("n", "next_blocking", "Next blocking call", "Next block",
        brief="next/previous blocking call"),
    Key("N", "previous_blocking", "Previous blocking call", "Prev block",
        brief="next/previous blocking call"),
    Key("g", "goto", "Go to a time or an event number", "Go to", brief="go to a time"),
    Key("home", "start", "Go to the start", brief="start/end"),
    Key("end", "end", "Go to the end", brief="start/end"),
    Key("f", "follow", "Follow the file as it grows", "Follow", brief="follow"),
    Key("slash", "filter", "Filter the events", "Filter", "/", "filter events"),
    # In the Footer only while they apply: typing a query, or a filter shown.
    Key("enter", "submit_filter", "Events filter: apply it and leave the box", "Apply filter"),
    Key("escape", "clear_filter", "Events filter: clear it and leave the box", "Clear filter",
        "esc"),
    *(Key(str(number), f"show_view('{name}')", f"Show the {name.title()} view", brief="views")
      for number, name in enumerate(VIEWS, 1)),
    Key("p", "next_process(1)", "Trace folder: show the next process (same moment)", "Process",
        brief="next/previous process"),
    Key("P", "next_process(-1)", "Trace folder: show the previous process",
        brief="next/previous process"),
    Key("d", "toggle_detail", "Show or hide the detail pane"),
    Key("o", "toggle_output", "Show or hide the app's output (run --tui)", "Output"),
    Key("s", "sort_next", "Sort the table by its next column (▲/▼ marks it)"),
    Key("r", "reverse_sort", "Reverse the table's sort"),
    Key("question_mark", "help", "Every key (this list)", "Help", "?", "every key"),
    Key("q", "quit", "Quit", "Quit", brief="quit"),
)

#: Keys that a focused widget answers, listed in the help screen beside the App's own.
WIDGET_KEYS: tuple[tuple[str, str], ...] = (
    ("↑/↓ pgup/pgdn", "Move in a table or the event log (the log moves the cursor)"),
    ("enter", "Blocking/Threads: move the cursor to the selected row's moment"),
    ("click header", "Sort a table by that column (again: the other way round)"),
    ("tab / shift+tab", "Move focus between the views, the filter and the panes"),
    ("ctrl+p", "Command palette: speeds, views, panes, filter, theme"),
)


def help_listing() -> list[tuple[str, str]]:
    """(key as written, description) of every key, the App's then the widgets'."""
    return [(k.shown_as, k.description) for k in KEYS] + list(WIDGET_KEYS)


def help_text() -> str:
    """One paragraph naming the main keys, for the CLI's ``--help`` of dashboard commands."""
    groups: dict[str, list[str]] = {}
    for k in KEYS:
        if k.brief is not None:
            groups.setdefault(k.brief, []).append(k.shown_as)
    phrases = [f"{_key_list(shown)} {brief}" for brief, shown in groups.items()]
    return "In the dashboard: " + ", ".join(phrases) + "."


def _key_list(shown: list[str]) -> str:
    """``n/N``; a run of consecutive digits as a range (``1-6``)."""
    if len(shown) > 2 and all(s.isdigit() for s in shown) and \
            [int(s) for s in shown] == list(range(int(shown[0]), int(shown[0]) + len(shown))):
        return f"{shown[0]}-{shown[-1]}"
    return "/".join(shown)
