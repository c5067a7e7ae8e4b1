"""The dashboard's playback rules, without an App: a fake timeline and a hand-moved clock."""

from __future__ import annotations

import math
from bisect import bisect_right

from tui.playback import SPEEDS, Mode, Playback, speed_label

MS = 1_000_000


class Timeline:
    """Events at the given times (ns), as a TraceModel answers for them."""

    def __init__(self, times: list[int]) -> None:
        self.times = times

    def __len__(self) -> int:
        return len(self.times)

    def time_ns(self, i: int) -> int:
        return self.times[i]

    def index_at(self, t_ns: int) -> int:
        return bisect_right(self.times, t_ns)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(mode: Mode = Mode.PAUSED, speed: float = 1.0, followable: bool = False,
         ) -> tuple[Playback, Clock]:
    clock = Clock()
    return Playback(mode, speed, followable=followable, clock=clock), clock


# one event every 100 ms, from 0 to 900 ms
TEN = Timeline([i * 100 * MS for i in range(10)])


def test_replay_moves_the_cursor_by_trace_time_at_its_speed() -> None:
    play, clock = make(Mode.REPLAY, speed=1.0)
    clock.now += 0.25
    play.tick(TEN, loaded=True)
    assert play.cursor == 3                  # events at 0, 100, 200 ms
    assert play.play_ns == 250 * MS
    play.set_speed(0.5)
    clock.now += 0.2                          # 100 ms of trace time at half speed
    play.tick(TEN, loaded=True)
    assert play.cursor == 4 and play.mode is Mode.REPLAY


def test_a_replay_that_reaches_the_end_pauses_or_goes_live_when_the_file_grows() -> None:
    saved, clock = make(Mode.REPLAY, speed=10.0)
    clock.now += 1.0
    saved.tick(TEN, loaded=True)
    assert saved.cursor == 10 and saved.mode is Mode.PAUSED
    assert saved.play_ns == 900 * MS         # the clock snaps to the last event

    growing, clock = make(Mode.REPLAY, speed=10.0, followable=True)
    clock.now += 1.0
    growing.tick(TEN, loaded=True)
    assert growing.mode is Mode.LIVE


def test_a_replay_waits_at_the_end_of_what_is_loaded_so_far() -> None:
    play, clock = make(Mode.REPLAY, speed=math.inf)
    play.tick(Timeline([0, 5]), loaded=False)
    assert play.cursor == 2 and play.mode is Mode.REPLAY      # more is coming
    play.tick(TEN, loaded=True)
    assert play.cursor == 10 and play.mode is Mode.PAUSED


def test_live_keeps_the_cursor_at_the_end_as_the_file_grows() -> None:
    play, _ = make(Mode.LIVE, followable=True)
    play.tick(Timeline([0, 5]), loaded=True)
    assert play.cursor == 2
    play.tick(TEN, loaded=True)
    assert play.cursor == 10 and play.mode is Mode.LIVE


def test_paused_time_is_not_replayed() -> None:
    play, clock = make(Mode.PAUSED)
    clock.now += 60.0                         # a minute spent paused
    play.play_pause(TEN, loaded=True)
    assert play.mode is Mode.REPLAY
    clock.now += 0.15
    play.tick(TEN, loaded=True)
    assert play.cursor == 2                   # 150 ms of trace time, not 60 s
    play.play_pause(TEN, loaded=True)
    assert play.mode is Mode.PAUSED
    clock.now += 5.0
    play.tick(TEN, loaded=True)
    assert play.cursor == 2


def test_space_at_the_end_of_a_loaded_file_has_nothing_to_replay() -> None:
    saved, _ = make()
    saved.seek(TEN, 10)
    saved.play_pause(TEN, loaded=True)
    assert saved.mode is Mode.PAUSED
    growing, _ = make(followable=True)
    growing.seek(TEN, 10)
    growing.play_pause(TEN, loaded=True)
    assert growing.mode is Mode.LIVE


def test_step_seek_and_jump_pause_and_stay_inside_the_trace() -> None:
    play, _ = make(Mode.LIVE, followable=True)
    play.tick(TEN, loaded=True)
    play.step(TEN, -1)
    assert play.cursor == 9 and play.mode is Mode.PAUSED
    play.step(TEN, 5)
    assert play.cursor == 10
    play.seek(TEN, -3)
    assert play.cursor == 0 and play.play_ns == 0
    play.seek(TEN, 4)
    assert play.play_ns == 300 * MS           # the time of the 4th event
    play.jump(TEN, 0.25)                      # 300 + 250 ms: events up to 500 ms
    assert play.cursor == 6
    play.jump(TEN, -10)
    assert play.cursor == 0
    play.seek_time(TEN, 450 * MS)
    assert play.cursor == 5


def test_speeds_step_through_the_presets_from_any_speed() -> None:
    play, _ = make(speed=3.0)                 # --speed 3: not a preset
    play.faster()
    assert play.speed == 10.0 and play.mode is Mode.REPLAY   # a paused cursor starts
    play.slower()
    play.slower()
    play.slower()
    assert play.speed == 0.5
    play.slower()
    play.slower()
    assert play.speed == SPEEDS[0] == 0.1
    for _ in SPEEDS:
        play.faster()
    assert math.isinf(play.speed)
    assert [speed_label(s) for s in (0.1, 0.5, 1.0, math.inf)] == ["0.1x", "0.5x", "1x", "max"]


def test_follow_goes_to_the_end_and_says_whether_the_file_can_grow() -> None:
    saved, _ = make()
    assert saved.follow(TEN) is False
    assert saved.cursor == 10 and saved.mode is Mode.PAUSED
    growing, _ = make(followable=True)
    assert growing.follow(TEN) is True
    assert growing.mode is Mode.LIVE


def test_next_and_previous_blocking_stop_just_after_each_call() -> None:
    positions = [3, 7]                        # just after the calls at events 2 and 6
    play, _ = make(Mode.REPLAY)
    assert play.next_blocking(TEN, positions) == 3
    assert play.cursor == 3 and play.mode is Mode.PAUSED
    assert play.next_blocking(TEN, positions) == 7
    assert play.next_blocking(TEN, positions) is None
    assert play.cursor == 7                   # none later: the cursor stays
    assert play.previous_blocking(TEN, positions) == 3
    assert play.previous_blocking(TEN, positions) is None
    assert play.cursor == 3
