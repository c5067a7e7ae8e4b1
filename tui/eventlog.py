"""The Events view: a log of a million events that only draws what is on screen.

A DataTable of a million rows would build a million rows; this is a
ScrollView whose virtual height is the number of rows and whose
``render_line`` asks for the one event each visible line shows.  The rows are
either every event (a ``range``) or the indices a filter matched (an
``array``), both sorted, so the row of an event index is a bisection.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


class EventLog(ScrollView, can_focus=True):
    """Virtual log of events; ↑/↓/page keys or a click select an event, and
    selecting one posts :class:`EventLog.Selected` (the app moves its cursor
    there)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Previous event", show=False),
        Binding("down", "move(1)", "Next event", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"eventlog--cursor"}
    DEFAULT_CSS = """
    EventLog {
        overflow-x: hidden;
    }
    EventLog > .eventlog--cursor {
        background: $accent 40%;
        text-style: bold;
    }
    """

    class Selected(Message):
        """The user selected the event with index ``index``."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, describe: Callable[[int], Text], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._describe = describe
        self.rows: Sequence[int] = range(0)
        self.selected_row: int | None = None

    def set_rows(self, rows: Sequence[int]) -> None:
        """Show ``rows`` (sorted event indices); the selection is re-found by
        the next :meth:`show_index`."""
        self.rows = rows
        # Width 0: lines are cut to the view, never scrolled sideways.
        self.virtual_size = Size(0, len(rows))
        self.refresh()

    def show_index(self, index: int | None) -> None:
        """Select the last row at or before event ``index`` and scroll to it."""
        if index is None or not self.rows:
            row = None
        else:
            row = max(bisect_right(self.rows, index) - 1, 0)
        if row != self.selected_row:
            self.selected_row = row
            if row is not None:
                # After the next refresh: a just-shown tab has no size yet.  Forced: right
                # after set_rows the scrollbars may not be recomputed for the new length, and
                # an unforced scroll is then refused (the filter cleared, the list stayed on top).
                self.call_after_refresh(self.scroll_to_region, Region(0, row, 1, 1),
                                        animate=False, force=True)
            self.refresh()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """Textual moves the scrollbar with ``scroll_y`` only while the scrollbar is shown:
        a scroll made before it appeared (rows just set, a tab just shown, a busy machine)
        would leave its thumb at the top of a list scrolled to the bottom."""
        if shown:
            self.vertical_scrollbar.position = self.scroll_y

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        if row >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        text = self._describe(self.rows[row])
        text.truncate(width, pad=True)
        style = self.rich_style
        if row == self.selected_row:
            style = style + self.get_component_rich_style("eventlog--cursor")
        segments = [Segment(s.text, style + s.style if s.style else style)
                    for s in text.render(self.app.console, end="")]
        return Strip(segments, width)

    def _select_row(self, row: int) -> None:
        if not self.rows:
            return
        row = min(max(row, 0), len(self.rows) - 1)
        self.post_message(self.Selected(self.rows[row]))

    def action_move(self, delta: int) -> None:
        self._select_row((self.selected_row if self.selected_row is not None else -1) + delta)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(self.size.height - 1, 1))

    def on_click(self, event: Click) -> None:
        self._select_row(int(self.scroll_y) + event.y)
