"""Trace text is data: cleaning, and reading the go-to prompt."""

from __future__ import annotations

from rich.text import Text

from tracer.model import Site
from tui.describe import event_line
from tui.screens import parse_position
from tui.text import clean, safe


def test_clean_strips_terminal_escapes_and_control_characters() -> None:
    raw = "a\x1b[31mred\x1b[0m\x1b]0;title\x07b\x1b(B\x07\x00c\x9bd\ttab\nline"
    assert clean(raw) == "aredbcd tab line"


def test_clean_cuts_long_text_with_an_ellipsis() -> None:
    assert clean("x" * 50, 10) == "x" * 9 + "…"


def test_safe_text_is_never_markup() -> None:
    text = safe("[bold]x[/bold] [@click=app.quit]q[/]", limit=None)
    assert isinstance(text, Text)
    assert text.plain == "[bold]x[/bold] [@click=app.quit]q[/]"
    assert not text.spans


def test_parse_position_accepts_times_and_event_numbers() -> None:
    assert parse_position("1.5") == ("time", 1_500_000_000)
    assert parse_position(" 2s ") == ("time", 2_000_000_000)
    assert parse_position("300ms") == ("time", 300_000_000)
    assert parse_position("40us") == ("time", 40_000)
    assert parse_position("#12") == ("event", 12)
    for bad in ("", "soon", "-1", "#x", "nan", "inf"):
        assert parse_position(bad) is None


def test_event_lines_name_sites_and_read_durations_at_their_scale() -> None:
    class Sites:
        def site(self, site_id: int) -> object:
            return Site("app.Echo.dataReceived", "/app/app.py", 20)

    line = event_line(Sites(), {"t": 5, "ev": "call", "site": 3, "dur": 15_000, "lag": 2_500_000,
                                "fd": 7}, 5_000_000_000)
    assert line.plain == ("    5.000000 call      site=app.Echo.dataReceived (app.py:20) "
                          "dur=15µs lag=2.5ms fd=7")
    added = event_line(Sites(), {"t": 5, "ev": "dadd", "d": 1, "cb": 3, "eb": 0}, 0)
    assert added.plain.endswith("cb=app.Echo.dataReceived (app.py:20) eb=-")
    site = event_line(Sites(), {"t": 5, "ev": "site", "id": 3, "fn": "app.Echo.dataReceived",
                                "file": "/home/someone/work/app.py", "line": 20}, 0)
    assert "file=app.py " in site.plain and "/home/someone" not in site.plain


def test_the_callbacks_detail_has_percentiles_and_a_duration_histogram() -> None:
    from tracer.model import CallbackStats, StateBuilder
    from tui.detail import callback

    builder = StateBuilder(50_000_000)
    builder.apply({"t": 0, "ev": "site", "id": 1, "fn": "app.tick", "file": "/app/app.py",
                   "line": 3}, 0)
    durations = [20_000] * 90 + [2_000_000] * 9 + [120_000_000]
    t = 0
    for i, dur in enumerate(durations, 1):
        t += dur + 1000
        builder.apply({"t": t, "ev": "call", "kind": "timer", "site": 1, "dur": dur,
                       "depth": 0}, i)
    stats = builder.state.callbacks[1]
    assert isinstance(stats, CallbackStats)

    class Sites:
        def site(self, site_id: int) -> Site:
            return builder.sites[site_id]

    text = callback(stats, Sites()).plain
    assert "a timer (callLater): 100 calls" in text
    assert "p50 20µs" in text and "max 120.0ms" in text
    assert "1 of them blocked the loop" in text
    bars = {line.split()[0]: line.split()[-1] for line in text.splitlines() if "█" in line}
    assert bars == {"≤30µs": "90", "≤3ms": "9", "≤300ms": "1"}
    # On asyncio a timer call is a call_soon or call_later handle, and says so.
    assert "a callback (call_soon or call_later): 100 calls" in callback(
        stats, Sites(), "asyncio").plain


def test_an_asyncio_task_stall_is_told_in_asyncio_words() -> None:
    from tracer.model import StateBuilder
    from tui.detail import stall

    builder = StateBuilder(50_000_000)
    for site, fn, line in [(1, "asyncio.base_events.BaseEventLoop.create_task", 436),
                           (2, "app.report", 11)]:
        builder.apply({"t": 0, "ev": "site", "id": site, "fn": fn, "file": "/app/app.py",
                       "line": line}, site)
    builder.apply({"t": 10, "ev": "timer", "id": 7, "site": 1, "fn": 2, "due": 10}, 3)
    builder.apply({"t": 300_000_000, "ev": "call", "kind": "task", "site": 2,
                   "dur": 200_000_000, "depth": 0, "timer": 7, "lag": 0}, 4)
    [blocked] = builder.state.stalls

    class Sites:
        def site(self, site_id: int) -> Site:
            return builder.sites[site_id]

    text = stall(blocked, Sites()).plain
    assert "app.report (app.py:11), a step of an asyncio Task" in text
    assert "scheduled in asyncio.base_events.BaseEventLoop.create_task" in text
    assert "Deferred" not in text


def test_a_generator_expression_is_not_a_second_row_of_the_stack() -> None:
    """``sum(i * i for i in ...)``: the sample holds the function and its generator
    expression, on the same line.  Both read as the function there: one row, not two."""
    from tracer.model import StateBuilder
    from tui.detail import stall

    builder = StateBuilder(50_000_000)
    builder.apply({"t": 0, "ev": "site", "id": 1, "fn": "app.compact", "file": "/app/app.py",
                   "line": 5}, 0)
    builder.apply({"t": 60_000_000, "ev": "stall", "site": 1, "kind": "timer", "depth": 0,
                   "since": 1000, "blocked": 59_999_000,
                   "stack": [["/app/app.py", 9, "main"], ["/app/app.py", 10, "compact"],
                             ["/app/app.py", 10, "compact.<locals>.<genexpr>"]]}, 1)
    builder.apply({"t": 120_001_000, "ev": "call", "kind": "timer", "site": 1,
                   "dur": 120_000_000, "depth": 0}, 2)
    [blocked] = builder.state.stalls

    class Sites:
        def site(self, site_id: int) -> Site:
            return builder.sites[site_id]

    rows = [line for line in stall(blocked, Sites()).plain.splitlines() if "app.py:" in line
            and line.startswith(("▶", "  "))]
    assert rows == ["▶ main  app.py:9", "▶ compact  app.py:10"]
