"""The health strip: loop busy % and lag over the trace's time, the stalls and the cursor
marked under them, and a time axis.

Loop samples arrive every 100 ms of loop time, so the samples are put into fixed time buckets
(one per column) before they reach the Sparklines; that keeps both Sparklines, the marks line
and the axis on the same time axis.  Each sample is added once to :class:`TimeBins` (a bounded
number of bins), so a redraw costs the bins, not the samples.

*Lag* is how late the loop answered: the timers' lag, and each stall's length at the moment it
ended (a 250 ms stall is 250 ms of lag for whatever was waiting, a timer or a socket, even when
no timer was due).  Busy is drawn against a fixed 0-100% scale, lag against its own maximum,
and both scales are labelled on the right.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from tracer.model import LoopSample, Stall

LABEL_WIDTH = 12
SCALE_WIDTH = 10
#: Steps between the axis' ticks, in seconds: the smallest that leaves room for its label.
TICK_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60,
                120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400)
TICK_ROOM = 8    # columns per tick at least: "12.5s" and a gap


def bucket_max(points: Iterable[tuple[int, float]], span_ns: int, width: int,
               since_ns: int = 0) -> list[float]:
    """The largest value per column when ``[0, span_ns]`` is cut into
    ``width`` columns.

    A loop sample describes the interval that ends at its time, so a column
    with no sample of its own takes the value of the next sample after it;
    columns after the last sample (not reached yet) stay 0, and so do those
    before ``since_ns``, when no loop ran yet (an app importing its modules
    is not a busy loop).
    """
    columns: list[float | None] = [None] * max(width, 1)
    if span_ns <= 0:
        return [0.0] * len(columns)
    last = len(columns) - 1
    for t_ns, value in points:
        column = min(int(t_ns * len(columns) / span_ns), last)
        current = columns[column]
        if current is None or value > current:
            columns[column] = value
    filled: list[float] = []
    following = 0.0
    for cell in reversed(columns):
        if cell is not None:
            following = cell
        filled.append(following)
    filled.reverse()
    for column in range(min(int(since_ns * len(columns) / span_ns), len(columns))):
        filled[column] = 0.0
    return filled


class TimeBins:
    """The largest value per time bin, over a time axis that keeps growing.

    At most :attr:`MAX_BINS` bins: when a sample lands beyond them, the bins
    double in width (neighbours merged), so adding a sample is cheap however
    long the trace gets and the bins stay finer than any screen column.
    """

    MAX_BINS = 4096

    def __init__(self) -> None:
        self.bin_ns = 1_000_000
        self.bins: list[float | None] = []

    def add(self, t_ns: int, value: float) -> None:
        index = t_ns // self.bin_ns
        while index >= self.MAX_BINS:
            self._coarsen()
            index = t_ns // self.bin_ns
        if index >= len(self.bins):
            self.bins.extend([None] * (index + 1 - len(self.bins)))
        current = self.bins[index]
        if current is None or value > current:
            self.bins[index] = value

    def _coarsen(self) -> None:
        self.bin_ns *= 2
        merged: list[float | None] = []
        for i in range(0, len(self.bins), 2):
            pair = [v for v in self.bins[i:i + 2] if v is not None]
            merged.append(max(pair) if pair else None)
        self.bins = merged

    def points(self) -> Iterator[tuple[int, float]]:
        """(bin start, value) of every bin that holds a sample."""
        return ((i * self.bin_ns, v) for i, v in enumerate(self.bins) if v is not None)


#: Bar heights, lowest to full.
BARS = "▁▂▃▄▅▆▇█"


class ScaledSparkline(Sparkline):
    """A Sparkline measured against a fixed full scale (``full``), not its data's own range.

    Textual's Sparkline stretches its data between the smallest and the largest value, so a
    loop that is steadily 75% busy would draw a flat line of the lowest bars.  Here a bar's
    height is its value over ``full``: 75% busy is three quarters of a cell, whatever the
    other columns hold.  One column per value (the health strip bins the samples to the
    width); colours as a Sparkline's, blended from the min to the max colour by height.
    """

    def __init__(self, full: float, *, id: str | None = None) -> None:
        super().__init__([], id=id)
        self.full = full

    def render(self) -> Text:
        _, base = self.background_colors
        low = base + self.get_component_styles("sparkline--min-color").color
        high = base + self.get_component_styles("sparkline--max-color").color
        top = len(BARS) - 1
        heights = [round(min(max(value / self.full, 0.0), 1.0) * top)
                   for value in (self.data or [])[: max(self.size.width, 1)]]
        text = Text(no_wrap=True)
        for height, run in groupby(heights):  # one span per run of equal bars
            text.append(BARS[height] * len(list(run)),
                        Style(color=low.blend(high, height / top).rich_color))
        return text


class Marks(Widget):
    """One line: a tick per stall, a caret at the cursor, the axis' ticks between them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"marks--block", "marks--cursor", "marks--axis"}
    DEFAULT_CSS = """
    Marks { height: 1; }
    Marks > .marks--block { color: $error; text-style: bold; }
    Marks > .marks--cursor { color: $accent; text-style: bold; }
    Marks > .marks--axis { color: $foreground 30%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._blocks: Sequence[int] = ()
        self._cursor_ns = 0
        self._span_ns = 0

    def show(self, blocks_ns: Sequence[int], cursor_ns: int, span_ns: int) -> None:
        """Mark stalls at ``blocks_ns`` and the cursor on ``[0, span_ns]``."""
        self._blocks, self._cursor_ns, self._span_ns = blocks_ns, cursor_ns, span_ns
        self.refresh()

    def render(self) -> Text:
        width = max(self.size.width, 1)
        cells = ["·"] * width
        styles = ["marks--axis"] * width
        for column, _ in ticks(self._span_ns, width):
            cells[column] = "╵"
        for t_ns in self._blocks:
            column = time_column(t_ns, self._span_ns, width)
            cells[column], styles[column] = "▮", "marks--block"
        column = time_column(self._cursor_ns, self._span_ns, width)
        cells[column], styles[column] = "▲", "marks--cursor"
        text = Text(no_wrap=True)
        for cell, style in zip(cells, styles, strict=True):
            text.append(cell, self.get_component_rich_style(style))
        return text


class Axis(Widget):
    """The time axis: a label under each of the marks line's ticks."""

    DEFAULT_CSS = """
    Axis { height: 1; color: $foreground 50%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._span_ns = 0

    def show(self, span_ns: int) -> None:
        if span_ns != self._span_ns:
            self._span_ns = span_ns
            self.refresh()

    def render(self) -> Text:
        width = max(self.size.width, 1)
        line = [" "] * width
        for column, label in ticks(self._span_ns, width):
            if column + len(label) <= width:
                line[column:column + len(label)] = label
        return Text("".join(line), no_wrap=True)


def time_column(t_ns: int, span_ns: int, width: int) -> int:
    """The column of trace time ``t_ns`` when ``[0, span_ns]`` fills ``width`` columns."""
    if span_ns <= 0:
        return 0
    return min(int(t_ns * width / span_ns), width - 1)


def ticks(span_ns: int, width: int) -> list[tuple[int, str]]:
    """(column, label) of the axis' ticks: round times, at least TICK_ROOM columns apart."""
    if span_ns <= 0 or width < TICK_ROOM:
        return []
    span_s = span_ns / 1e9
    step = next((s for s in TICK_STEPS_S if s * width / span_s >= TICK_ROOM), TICK_STEPS_S[-1])
    found = []
    k = 0
    while k * step <= span_s:
        found.append((time_column(int(k * step * 1e9), span_ns, width), _seconds(k * step)))
        k += 1
    return found


def _seconds(t_s: float) -> str:
    if t_s >= 3600 and t_s % 3600 == 0:
        return f"{t_s / 3600:g}h"
    if t_s >= 60 and t_s % 60 == 0:
        return f"{t_s / 60:g}m"
    if t_s and t_s < 1:
        return f"{t_s * 1000:g}ms"
    return f"{t_s:g}s"


class HealthStrip(Vertical):
    """Busy %, lag, stalls and time, each a labelled row."""

    DEFAULT_CSS = f"""
    HealthStrip {{ height: 4; }}
    HealthStrip Horizontal {{ height: 1; }}
    HealthStrip .health-label {{ width: {LABEL_WIDTH}; color: $foreground 70%; }}
    HealthStrip .health-scale {{ width: {SCALE_WIDTH}; color: $foreground 50%;
                                padding-left: 1; }}
    HealthStrip Sparkline, HealthStrip Marks, HealthStrip Axis {{ width: 1fr; }}
    HealthStrip #lag > .sparkline--max-color {{ color: $warning; }}
    HealthStrip #lag > .sparkline--min-color {{ color: $warning 30%; }}
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._series_key: tuple[int, int, int, int] | None = None
        self._busy_bins = TimeBins()
        self._lag_bins = TimeBins()
        self._samples_added = 0          # loop samples added to the bins so far
        self._stalls_added = 0           # stalls added to the lag bins so far
        self._busy: list[float] = []
        self._lag: list[float] = []
        self._shown: tuple[Sequence[LoopSample], Sequence[Stall], Sequence[int], int,
                           int] | None = None

    def on_resize(self) -> None:
        """Columns are time buckets: a new width means new buckets."""
        if self._shown is not None:
            self.show(*self._shown)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("busy", id="busy-label", classes="health-label")
            yield ScaledSparkline(100.0, id="busy")
            yield Label("max 100%", classes="health-scale")
        with Horizontal():
            yield Label("lag", id="lag-label", classes="health-label")
            yield Sparkline([], id="lag")
            yield Label("", id="lag-scale", classes="health-scale")
        with Horizontal():
            yield Label("stalls", classes="health-label")
            yield Marks(id="marks")
            yield Label("", classes="health-scale")
        with Horizontal():
            yield Label("", classes="health-label")
            yield Axis(id="axis")
            yield Label("", classes="health-scale")

    def show(self, samples: Sequence[LoopSample], stalls: Sequence[Stall],
             blocks_ns: Sequence[int], cursor_ns: int, span_ns: int) -> None:
        """Plot the whole trace's loop samples and stalls (the model's lists, which only
        grow) up to the cursor, and mark the stalls at ``blocks_ns``."""
        self._shown = (samples, stalls, blocks_ns, cursor_ns, span_ns)
        width = max(self.query_one("#busy", ScaledSparkline).size.width, 1)
        for sample in samples[self._samples_added:]:
            self._busy_bins.add(sample.t_ns, sample.busy_ratio * 100.0)
            self._lag_bins.add(sample.t_ns, sample.lag_max_ms)
        for stall in stalls[self._stalls_added:]:
            self._lag_bins.add(stall.call.t_ns + stall.call.dur_ns, stall.call.dur_ns / 1e6)
        self._samples_added, self._stalls_added = len(samples), len(stalls)
        key = (len(samples), len(stalls), span_ns, width)
        if key != self._series_key:
            self._series_key = key
            since = samples[0].t_ns - samples[0].dt_ns if samples else 0
            self._busy = bucket_max(self._busy_bins.points(), span_ns, width, since)
            self._lag = bucket_max(self._lag_bins.points(), span_ns, width, since)
        shown = time_column(cursor_ns, span_ns, width) + 1 if span_ns > 0 else 0
        future = [0.0] * (width - shown)
        self.query_one("#busy", ScaledSparkline).data = self._busy[:shown] + future
        lag = self._lag[:shown]
        self.query_one("#lag", Sparkline).data = lag + future
        self.query_one("#lag-scale", Label).update(f"max {max(lag, default=0):,.0f}ms")
        at = bisect_right(samples, cursor_ns, key=lambda s: s.t_ns)
        now_busy, now_lag = ((samples[at - 1].busy_ratio * 100.0, samples[at - 1].lag_max_ms)
                             if at else (0.0, 0.0))
        self.query_one("#busy-label", Label).update(f"busy {now_busy:3.0f}%")
        self.query_one("#lag-label", Label).update(f"lag {now_lag:5.0f}ms")
        self.query_one("#marks", Marks).show(blocks_ns, cursor_ns, span_ns)
        self.query_one("#axis", Axis).show(span_ns)
