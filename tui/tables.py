"""The table widget every tabular view uses: a row-cursor DataTable that sorts by any column
and keeps its place when its rows are replaced.

Views rebuild their rows from a fresh :class:`TraceState` whenever the cursor moves; without
remembering the highlighted row's key the selection would jump back to the top ten times a
second during replay.  Each row carries a sort value per column, so a click on a header (or
``s`` and ``r``) re-sorts the rows it holds at once, with ▲/▼ on the sorted column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

#: A view is for reading: longer lists are cut, after sorting, to the first this many rows.
MAX_ROWS = 500
#: A text column is narrowed down to this at most, when the table is wider than its room.
MIN_TEXT_WIDTH = 10


@dataclass(frozen=True)
class Column:
    """``key``, the header ``label``, whether a first click sorts it largest first, and
    whether it may be narrowed (its texts cut with …) to fit the table in its room."""
    key: str
    label: str
    descending: bool = True
    shrink: bool = False


@dataclass(frozen=True)
class Row:
    """One row: its stable ``key``, the ``cells`` shown, the sort ``values`` (one per
    column) and the ``obj`` the detail pane describes."""
    key: str
    cells: Sequence[Text]
    values: Sequence[float | str]
    obj: object


class Table(DataTable[Text]):
    """A DataTable with a row cursor whose rows carry the object they show
    (``row_object``), sorted by one column at a time."""

    def __init__(self, columns: Sequence[Column], *, sort: str | None = None,
                 reverse: bool = True, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id)
        self._columns = list(columns)
        self.sort_column = sort           # None: the order the view gives
        self.sort_reverse = reverse
        self._rows: list[Row] = []
        self._objects: dict[str, object] = {}
        self._shown_width = -1     # the width the cells were last cut for

    def on_mount(self) -> None:
        for column in self._columns:
            self.add_column(self._label(column), key=column.key)

    def _label(self, column: Column) -> Text:
        if column.key != self.sort_column:
            return Text(column.label)
        return Text(f"{column.label} {'▼' if self.sort_reverse else '▲'}")

    def replace_rows(self, rows: Iterable[Row]) -> None:
        """Show exactly ``rows`` (sorted, cut to MAX_ROWS), keeping the cursor on the same
        key when it is still there, except on the first row, which stays first: while a
        trace loads, the Blocking view keeps its longest stall under the cursor however the
        rows arrived, until the user moves off the top.  The same rows again change nothing:
        a table cleared and filled again is drawn again whole, ten times a second in a
        replay."""
        rows = list(rows)
        if rows == self._rows:
            return
        self._rows = rows
        self._show()

    def _show(self) -> None:
        previous = self.highlighted_key if self.cursor_row > 0 else None
        rows = self._rows
        if self.sort_column is not None:
            at = [c.key for c in self._columns].index(self.sort_column)
            rows = sorted(rows, key=lambda r: r.values[at], reverse=self.sort_reverse)
        rows = rows[:MAX_ROWS]
        self._shown_width = self.size.width
        caps = self._widths(rows)
        self.clear()
        # The widths of the rows shown now, set before anything is drawn: DataTable would
        # measure the new rows only on its next idle, and lines drawn until then (kept in
        # its line cache) had the widths of the rows before, or of the bare labels.
        for column, width in zip(self.columns.values(), caps, strict=True):
            column.content_width = width
        self._objects = {}
        for row in rows:
            self.add_row(*(cell if cell.cell_len <= cap else _cut(cell, cap)
                           for cell, cap in zip(row.cells, caps, strict=True)), key=row.key)
            self._objects[row.key] = row.obj
        self.show_cursor = bool(self._objects)
        if previous is not None:
            self.select_key(previous)

    def _widths(self, rows: Sequence[Row]) -> list[int]:
        """Each column's width for ``rows``: what its cells need, the widest text columns
        narrowed one cell at a time while the table is wider than its room (never a
        horizontal scrollbar over the last row)."""
        widths = [max([self._label(c).cell_len, *(r.cells[i].cell_len for r in rows)])
                  for i, c in enumerate(self._columns)]
        # Each column has a cell of padding either side; one column is left for the
        # vertical scrollbar.
        room = self.size.width - 1 - 2 * self.cell_padding * len(widths)
        shrinkable = [i for i, c in enumerate(self._columns) if c.shrink]
        while sum(widths) > room and shrinkable:
            widest = max(shrinkable, key=lambda i: widths[i])
            if widths[widest] <= MIN_TEXT_WIDTH:
                break
            widths[widest] -= 1
        return widths

    def on_resize(self) -> None:
        # Rows of another height resize the table too; only a new width changes its cells.
        if self.size.width != self._shown_width:
            self._show()

    def sort_by(self, key: str) -> None:
        """Sort by column ``key``; the column sorted already: the other way round."""
        if key == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = key
            self.sort_reverse = next(c.descending for c in self._columns if c.key == key)
        self._relabel()
        self._show()

    def sort_next(self) -> None:
        """Sort by the next column (``s``)."""
        keys = [c.key for c in self._columns]
        at = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_by(keys[at % len(keys)])

    def reverse_sort(self) -> None:
        """The same column, the other way round (``r``)."""
        if self.sort_column is None:
            self.sort_next()
        else:
            self.sort_by(self.sort_column)

    def _relabel(self) -> None:
        for column in self._columns:
            self.columns[ColumnKey(column.key)].label = self._label(column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)

    @property
    def highlighted_key(self) -> str | None:
        """Key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def select_key(self, key: str) -> None:
        """Put the cursor on row ``key`` if it is shown."""
        if key in self._objects:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def row_object(self, key: str | None) -> object | None:
        """The object shown on row ``key``."""
        return None if key is None else self._objects.get(key)


def _cut(cell: Text, width: int) -> Text:
    cut = cell.copy()
    cut.truncate(width, overflow="ellipsis")
    return cut
