"""The health strip's time axis."""

from tui.health import bucket_max


def test_samples_fill_the_columns_they_cover_and_the_future_stays_empty() -> None:
    # A sample covers the interval before it: columns 0-1 belong to t=10,
    # columns 2-5 to t=50 (the larger value of the two in column 5 wins).
    points = [(10, 1.0), (50, 3.0), (55, 2.0)]
    assert bucket_max(points, 100, 10) == [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]


def test_an_empty_trace_gives_a_flat_line() -> None:
    assert bucket_max([], 0, 4) == [0.0] * 4
