"""The table widget every tabular view uses: a row-cursor DataTable that
keeps its place when its rows are replaced.

Views rebuild their rows from a fresh :class:`TraceState` whenever the
cursor moves; without remembering the highlighted row's key the selection
would jump back to the top ten times a second during replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable


class Table(DataTable[Text | str]):
    """A DataTable with a row cursor whose rows carry the object they show
    (``row_object``), so the detail pane can print every field of it."""

    def __init__(self, columns: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id)
        self._column_spec = list(columns)
        self._objects: dict[str, object] = {}

    def on_mount(self) -> None:
        for key, label in self._column_spec:
            self.add_column(label, key=key)

    def replace_rows(self, rows: Iterable[tuple[str, Sequence[Text | str], object]]) -> None:
        """Show exactly ``rows`` (key, cells, object), keeping the cursor on
        the same key when it is still there."""
        previous = self.highlighted_key
        self.clear()
        self._objects = {}
        for key, cells, obj in rows:
            self.add_row(*cells, key=key)
            self._objects[key] = obj
        if previous is not None:
            self.select_key(previous)

    @property
    def highlighted_key(self) -> str | None:
        """Key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    def select_key(self, key: str) -> None:
        """Put the cursor on row ``key`` if it is shown."""
        if key in self._objects:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def row_object(self, key: str | None) -> object | None:
        """The object shown on row ``key``."""
        return None if key is None else self._objects.get(key)
