"""The dashboard's playback: where the cursor is and how it moves, with no screen attached.

The dashboard shows the state after the first ``cursor`` events of a trace.  :class:`Playback`
decides where that cursor is: LIVE keeps it at the end of a file that is still growing, REPLAY
moves it through the trace on a trace clock running ``speed`` times real time, PAUSED holds it.
Every key that moves the cursor is a method here; the App maps keys to them, calls
:meth:`Playback.tick` ten times a second and redraws when the cursor moved.  Nothing here
imports Textual, so the rules are tested directly (tests/tui/test_playback.py) with a fake
timeline and a fake clock.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Protocol

#: The speeds ``+`` and ``-`` step through (``--speed`` may give any other).  Below 1x to
#: watch a burst event by event; ``inf`` ("max") runs to the end as fast as the file loads.
SPEEDS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 10.0, 100.0, math.inf)
SECOND_NS = 1_000_000_000


class Mode(Enum):
    LIVE = "live"        # the cursor stays at the end as the file grows
    REPLAY = "replay"    # the cursor moves on the trace clock
    PAUSED = "paused"    # the cursor stays where it is


class Timeline(Protocol):
    """What playback needs of a trace: its length and its events' times (a Model)."""

    def __len__(self) -> int: ...

    def time_ns(self, i: int) -> int:
        """Time of event ``i``; never decreasing with ``i``."""
        ...

    def index_at(self, t_ns: int) -> int:
        """Number of events at or before ``t_ns``."""
        ...


def speed_label(speed: float) -> str:
    """``0.5x``, ``10x``, or ``max``."""
    return "max" if math.isinf(speed) else f"{speed:g}x"


class Playback:
    """The cursor over a trace and the rules that move it.

    ``followable`` says the file may still grow (``loopscope live`` and ``run --tui``): a
    replay that reaches its end then goes LIVE instead of pausing.  ``clock`` gives real
    seconds (injectable for tests).
    """

    def __init__(self, mode: Mode, speed: float = 1.0, *, followable: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mode = mode
        self.speed = speed
        self.followable = followable
        self.cursor = 0            # events applied
        self.play_ns = 0.0         # the replay clock, in trace time
        self._clock = clock
        self._last_tick = clock()

    @staticmethod
    def time_at(timeline: Timeline, cursor: int) -> int:
        """Trace time after the first ``cursor`` events."""
        return timeline.time_ns(cursor - 1) if cursor > 0 else 0

    def tick(self, timeline: Timeline, loaded: bool) -> None:
        """Move the cursor by the time passed since the last tick; ``loaded`` says the whole
        file has been read (until then a replay waits at the end of what has been)."""
        now = self._clock()
        elapsed, self._last_tick = now - self._last_tick, now
        total = len(timeline)
        if self.mode is Mode.LIVE:
            self._place(timeline, total)
        elif self.mode is Mode.REPLAY:
            if math.isinf(self.speed):
                self._place(timeline, total)
            else:
                self.play_ns += elapsed * self.speed * SECOND_NS
                self.cursor = min(timeline.index_at(int(self.play_ns)), total)
            if self.cursor >= total and loaded:
                self.mode = Mode.LIVE if self.followable else Mode.PAUSED
                self._place(timeline, total)

    def _place(self, timeline: Timeline, cursor: int) -> None:
        self.cursor = max(0, min(cursor, len(timeline)))
        self.play_ns = float(self.time_at(timeline, self.cursor))

    # -- what the keys do ---------------------------------------------------------------
    def seek(self, timeline: Timeline, cursor: int) -> None:
        """Put the cursor after event ``cursor - 1`` and pause there (browsing holds it)."""
        self._place(timeline, cursor)
        self.mode = Mode.PAUSED

    def seek_time(self, timeline: Timeline, t_ns: int) -> None:
        """Pause at the last event at or before trace time ``t_ns``."""
        self.seek(timeline, timeline.index_at(t_ns) if t_ns >= 0 else 0)

    def carry(self, timeline: Timeline, t_ns: int) -> None:
        """Move the cursor onto another timeline (another process of a trace folder) at its
        trace time ``t_ns``, in the same mode: LIVE stays at its end, a replay goes on from
        there, a pause holds there."""
        if self.mode is Mode.LIVE:
            self._place(timeline, len(timeline))
            return
        self._place(timeline, timeline.index_at(t_ns) if t_ns >= 0 else 0)
        if self.mode is Mode.REPLAY:
            self.play_ns = float(max(t_ns, 0))

    def step(self, timeline: Timeline, delta: int) -> None:
        """``delta`` events forward (negative: back)."""
        self.seek(timeline, self.cursor + delta)

    def jump(self, timeline: Timeline, seconds: float) -> None:
        """``seconds`` of trace time forward (negative: back)."""
        self.seek_time(timeline, self.time_at(timeline, self.cursor) + int(seconds * SECOND_NS))

    def pause(self) -> None:
        self.mode = Mode.PAUSED

    def play_pause(self, timeline: Timeline, loaded: bool) -> None:
        """Pause; or, when paused, replay from the cursor (at the end of a loaded file there
        is nothing to replay: a followable one goes LIVE, a saved one stays paused)."""
        if self.mode is not Mode.PAUSED:
            self.mode = Mode.PAUSED
        elif self.cursor >= len(timeline) and loaded:
            self.mode = Mode.LIVE if self.followable else Mode.PAUSED
        else:
            self.mode = Mode.REPLAY
            self._last_tick = self._clock()   # the time spent paused is not replayed

    def set_speed(self, speed: float) -> None:
        """Replay at ``speed``; a paused cursor starts moving."""
        self.speed = speed
        if self.mode is Mode.PAUSED:
            self.mode = Mode.REPLAY
            self._last_tick = self._clock()

    def faster(self) -> None:
        self.set_speed(SPEEDS[min(self._speed_index() + 1, len(SPEEDS) - 1)])

    def slower(self) -> None:
        self.set_speed(SPEEDS[max(self._speed_index() - 1, 0)])

    def _speed_index(self) -> int:
        """The preset at or below the current speed (``--speed`` may be any)."""
        return max((i for i, s in enumerate(SPEEDS) if s <= self.speed), default=0)

    def follow(self, timeline: Timeline) -> bool:
        """Go to the end and stay there as the file grows; False (and paused at the end)
        when the file is a saved one that will not grow."""
        self._place(timeline, len(timeline))
        self.mode = Mode.LIVE if self.followable else Mode.PAUSED
        return self.followable

    def next_blocking(self, timeline: Timeline, positions: Sequence[int]) -> int | None:
        """Pause just after the first blocking call after the cursor; ``positions`` are the
        sorted cursor positions just after each blocking call.  None (cursor unmoved) when
        there is none."""
        later = positions[bisect_right(positions, self.cursor):]
        if not later:
            return None
        self.seek(timeline, later[0])
        return later[0]

    def previous_blocking(self, timeline: Timeline, positions: Sequence[int]) -> int | None:
        """Like :meth:`next_blocking`, the last blocking call before the cursor."""
        earlier = positions[:bisect_right(positions, self.cursor - 1)]
        if not earlier:
            return None
        self.seek(timeline, earlier[-1])
        return earlier[-1]
