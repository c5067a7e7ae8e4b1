"""The process lanes: one line per process of a trace folder, on the run's one timeline.

Each lane spans the run from the first process's start to the last event of any: ``─`` where
its process was recording, ``█`` where it was stalled, ``│`` at the cursor.  The selected
process (the one the views below show; ``p``/``P`` change it) is marked ``▶``, and a process
stalled at the cursor's moment says ``BLOCKED``, so a user sees at once which process blocked
and when, and which one the rest of the screen is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui.text import clean

#: Columns of a lane's label (marker, pid, program) and of its note on the right.
LABEL_WIDTH = 34
NOTE_WIDTH = 11
#: Lanes shown at most; the rest are counted on one more line (the selected one always shows).
MAX_LANES = 6


@dataclass(frozen=True)
class Lane:
    """One process on the run's timeline (times in ns from the run's start)."""
    pid: int
    program: str
    start_ns: int
    end_ns: int
    stalls: tuple[tuple[int, int], ...]   # (start, end) of each stall
    selected: bool = False
    running_since_ns: int | None = None   # a stall still going on at the live edge

    def blocked_at(self, t_ns: int) -> bool:
        if self.running_since_ns is not None and self.running_since_ns <= t_ns:
            return True
        return any(start <= t_ns <= end for start, end in self.stalls)


def lane_text(lane: Lane, cursor_ns: int, span_ns: int, width: int) -> Text:
    """One lane as a line of ``width`` columns."""
    cells = max(width - LABEL_WIDTH - NOTE_WIDTH, 4)
    span = max(span_ns, 1)

    def column(t_ns: int) -> int:
        return min(max(int(t_ns * cells / span), 0), cells - 1)

    track = [" "] * cells
    for c in range(column(lane.start_ns), column(lane.end_ns) + 1):
        track[c] = "─"
    stalls = list(lane.stalls)
    if lane.running_since_ns is not None:
        stalls.append((lane.running_since_ns, lane.end_ns))
    for start, end in stalls:
        for c in range(column(start), column(end) + 1):
            track[c] = "█"
    cursor = column(cursor_ns)
    marker = "▶" if lane.selected else " "
    label = clean(f"{marker} {lane.pid:>7} {lane.program}", LABEL_WIDTH - 1)
    text = Text(f"{label:<{LABEL_WIDTH}}", style="bold" if lane.selected else "")
    for c, cell in enumerate(track):
        if c == cursor:
            text.append("┃" if cell == "█" else "│", style="bold reverse" if cell == "█" else "bold")
        else:
            text.append(cell, style="red" if cell == "█" else "dim")
    blocked = lane.blocked_at(cursor_ns)
    count = len(lane.stalls)
    note = "BLOCKED" if blocked else f"{count} stall{'s' if count != 1 else ''}"
    text.append(f" {note:<{NOTE_WIDTH - 1}}", style="bold red" if blocked else "")
    return text


def lanes_text(lanes: Sequence[Lane], cursor_ns: int, width: int) -> Text:
    """Every lane (at most :data:`MAX_LANES`, the selected one among them), one per line."""
    span = max((lane.end_ns for lane in lanes), default=0)
    shown = list(lanes[:MAX_LANES])
    selected = next((lane for lane in lanes if lane.selected), None)
    if selected is not None and selected not in shown:
        shown[-1] = selected
    lines = [lane_text(lane, cursor_ns, span, width) for lane in shown]
    if len(lanes) > len(shown):
        lines.append(Text(f"  … {len(lanes) - len(shown)} more processes (p/P to go through "
                          f"them)", style="dim"))
    return Text("\n").join(lines)


class ProcessLanes(Static):
    """The lanes of a trace folder's processes (see the module docstring); hidden while the
    folder holds one process (the screen is then the one of a trace file)."""

    def show(self, lanes: Sequence[Lane], cursor_ns: int) -> None:
        self.display = len(lanes) > 1
        if self.display:
            self.styles.height = min(len(lanes), MAX_LANES) + (len(lanes) > MAX_LANES)
            self.update(lanes_text(lanes, cursor_ns, self.size.width or 160))
