"""The health strip's time axis."""

from tui.health import TimeBins, bucket_max


def test_samples_fill_the_columns_they_cover_and_the_future_stays_empty() -> None:
    # A sample covers the interval before it: columns 0-1 belong to t=10,
    # columns 2-5 to t=50 (the larger value of the two in column 5 wins).
    points = [(10, 1.0), (50, 3.0), (55, 2.0)]
    assert bucket_max(points, 100, 10) == [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]


def test_before_the_loop_first_ran_the_columns_stay_empty() -> None:
    # An app that imports before its loop starts: the first sample (t=60, 100% busy over the
    # 10 before it) covers columns 5-6; columns 0-4 were no loop at all, not a busy one.
    assert bucket_max([(60, 100.0), (80, 5.0)], 100, 10, since_ns=50) == [
        0.0, 0.0, 0.0, 0.0, 0.0, 100.0, 100.0, 5.0, 5.0, 0.0]


def test_an_empty_trace_gives_a_flat_line() -> None:
    assert bucket_max([], 0, 4) == [0.0] * 4


def test_time_bins_keep_the_maximum_as_they_coarsen() -> None:
    bins = TimeBins()
    bins.add(0, 1.0)
    bins.add(1_500_000, 5.0)                       # bin 1 (1 ms bins)
    bins.add(TimeBins.MAX_BINS * 1_000_000, 2.0)   # beyond the bins: they double
    assert bins.bin_ns == 2_000_000
    assert list(bins.points()) == [(0, 5.0), (TimeBins.MAX_BINS * 1_000_000, 2.0)]


def test_busy_bars_are_measured_against_100_percent_not_the_data() -> None:
    import asyncio

    from textual.app import App

    from tui.health import ScaledSparkline

    class One(App):
        def compose(self):
            yield ScaledSparkline(100.0, id="busy")

    async def bars() -> str:
        app = One()
        async with app.run_test(size=(10, 1)) as pilot:
            sparkline = app.query_one(ScaledSparkline)
            sparkline.data = [75.0] * 4 + [0.0, 100.0, 250.0, -5.0, 50.0, 75.0]
            await pilot.pause()
            return sparkline.render().plain

    # steady 75% draws three-quarter bars (a min-max scale would draw them flat); values
    # beyond the scale are clipped
    assert asyncio.run(bars()) == "▆▆▆▆▁██▁▅▆"


def test_the_axis_ticks_round_times_with_room_for_their_labels() -> None:
    from tui.health import TICK_ROOM, ticks

    labels = [label for _, label in ticks(10_093_000_000, 138)]
    assert labels == [f"{s}s" for s in range(11)]
    short = ticks(2_500_000_000, 60)
    assert [label for _, label in short] == ["0s", "500ms", "1s", "1.5s", "2s", "2.5s"]
    columns = [c for c, _ in short]
    assert all(b - a >= TICK_ROOM for a, b in zip(columns, columns[1:]))
    assert ticks(0, 80) == []


def test_lag_shows_a_stall_even_when_no_timer_was_due(tmp_path) -> None:
    import asyncio

    from textual.widgets import Label, Sparkline

    from tui_support import MS, TraceWriter, loaded, replay_app

    path = tmp_path / "stall.jsonl"
    w = TraceWriter(path)
    read = w.site(0, "app.Slow.dataReceived", "/app/app.py", 31)
    for i in range(1, 21):              # the loop's own samples: no timer ever late
        w.event(i * 100 * MS, "loop", dt=100 * MS, it=10, busy=MS, idle=99 * MS, calls=1,
                lag_max=0, lag_mean=0)
    w.event(1250 * MS, "call", kind="read", site=read, dur=250 * MS, depth=0, fd=7)
    w.close()

    async def main() -> None:
        app = replay_app(path)
        async with app.run_test(size=(120, 36)) as pilot:
            await loaded(pilot)
            assert max(app.query_one("#lag", Sparkline).data) == 250.0
            assert str(app.query_one("#lag-scale", Label).render()) == "max 250ms"
    asyncio.run(main())
