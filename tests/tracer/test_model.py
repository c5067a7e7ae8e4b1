"""TraceModel: compact storage, time index, and checkpointed state_at equal to a straight replay."""

import random

import orjson
import pytest

from tracer import model as model_module
from tracer.model import StateBuilder, TraceModel

HEADER = {"ev": "trace", "v": 1, "pid": 1, "argv": [], "python": "3.11", "start_wall": 0.0,
          "threshold_ms": 50.0, "clock": "monotonic"}
MS = 1_000_000


def synthetic_events(n_rounds: int, seed: int = 7) -> list[dict]:
    """A plausible mix of every event kind, in time order."""
    rng = random.Random(seed)
    t = 0
    events = [{"t": 0, "ev": "site", "id": i, "fn": f"app.f{i}", "file": "app.py", "line": 10 * i}
              for i in range(1, 6)]
    d_next, job_next, fd_open = 1, 1, []
    for r in range(n_rounds):
        t += rng.randrange(1, 5 * MS)
        choice = rng.randrange(9)
        if choice == 0:
            dur = rng.choice([MS, 60 * MS, 120 * MS])
            if dur > 50 * MS:
                events.append({"t": t + 50 * MS, "ev": "stall", "site": 2, "kind": "read", "depth": 0,
                               "since": t, "blocked": 50 * MS, "stack": [["app.py", 21, "f2"]]})
            t += dur
            events.append({"t": t, "ev": "call", "kind": "read", "site": 2, "dur": dur, "depth": 0})
        elif choice == 1:
            d = d_next
            d_next += 1
            events += [{"t": t, "ev": "dnew", "d": d, "site": 1},
                       {"t": t, "ev": "dadd", "d": d, "cb": 3, "eb": 0}]
        elif choice == 2 and d_next > 1:
            d = rng.randrange(1, d_next)
            events += [{"t": t, "ev": "dfire", "d": d, "fail": False},
                       {"t": t + 10, "ev": "dcall", "d": d, "site": 3, "dur": 10, "depth": 1, "eb": False, "fail": False}]
        elif choice == 3 and d_next > 2:
            events.append({"t": t, "ev": "dchain", "d": d_next - 1, "inner": d_next - 2})
        elif choice == 4:
            fd = rng.randrange(5, 30)
            fd_open.append(fd)
            events += [{"t": t, "ev": "conn", "fd": fd, "role": "server", "host": "127.0.0.1:1", "peer": "127.0.0.1:2"},
                       {"t": t, "ev": "fdadd", "fd": fd, "mode": "r", "type": "Connection"}]
        elif choice == 5 and fd_open:
            fd = fd_open.pop(0)
            events += [{"t": t, "ev": "fdrm", "fd": fd, "mode": "r"},
                       {"t": t, "ev": "close", "fd": fd, "reason": "ConnectionDone", "in": 5, "out": 7}]
        elif choice == 6:
            job = job_next
            job_next += 1
            events += [{"t": t, "ev": "tsub", "job": job, "fn": 4}, {"t": t + 1, "ev": "tstart", "job": job, "tid": 9},
                       {"t": t + 2, "ev": "tdone", "job": job}]
        elif choice == 7:
            events.append({"t": t, "ev": "loop", "dt": 100 * MS, "it": 10, "busy": 20 * MS, "idle": 80 * MS,
                           "calls": 3, "lag_max": MS, "lag_mean": MS // 2})
        else:
            events += [{"t": t, "ev": "mark", "label": f"m{r}"},
                       {"t": t, "ev": "unhandled", "d": 1, "site": 1, "exc": "ValueError", "msg": "x", "stack": []}]
    return events


def straight_replay(events: list[dict], i: int):
    builder = StateBuilder(50 * MS)
    for j, e in enumerate(events[:i]):
        builder.apply(e, j)
    return builder.state


def as_read(events):
    """The ``(event, line)`` pairs a reader hands to the model."""
    return [(e, orjson.dumps(e)) for e in events]


@pytest.fixture
def small_checkpoints(monkeypatch):
    monkeypatch.setattr(model_module, "CHECKPOINT_EVERY", 16)


def test_state_at_equals_straight_replay(small_checkpoints):
    events = synthetic_events(400)
    m = TraceModel(HEADER)
    m.append(as_read(events))
    assert len(m) == len(events)
    rng = random.Random(3)
    indices = [0, 1, 15, 16, 17, len(events)] + [rng.randrange(len(events)) for _ in range(40)]
    for i in indices + sorted(indices) + [5, 6, 7]:  # random seeks, forward steps, backward
        assert m.state_at(i) == straight_replay(events, i), i


def test_state_at_returns_independent_snapshots(small_checkpoints):
    events = synthetic_events(100)
    m = TraceModel(HEADER)
    m.append(as_read(events))
    early = m.state_at(40)
    copy_before = straight_replay(events, 40)
    m.state_at(41)
    m.state_at(len(events))
    assert early == copy_before


def test_load_matches_append_and_index_helpers(tmp_path):
    events = synthetic_events(300)
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps(HEADER) + b"\n" + b"".join(orjson.dumps(e) + b"\n" for e in events))
    seen = []
    loaded = TraceModel.load(str(path), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert len(loaded) == len(events)
    assert loaded.event(7) == events[7] and loaded.kind(7) == events[7]["ev"]
    assert loaded.time_ns(7) == events[7]["t"]
    t = events[100]["t"]
    assert loaded.index_at(t) == sum(1 for e in events if e["t"] <= t)
    assert loaded.index_at(-1) == 0 and loaded.index_at(loaded.duration_ns) == len(events)
    assert loaded.site(2).fn == "app.f2" and loaded.site(999).fn == "?"
    assert loaded.state_at(len(events)) == straight_replay(events, len(events))


def test_blocking_calls_carry_their_stall_stack_and_running_clears():
    events = synthetic_events(0) + [
        {"t": 60 * MS, "ev": "stall", "site": 2, "kind": "timer", "depth": 0, "since": 5 * MS,
         "blocked": 55 * MS, "stack": [["app.py", 20, "f2"], ["app.py", 22, "inner"]]},
        {"t": 130 * MS, "ev": "call", "kind": "timer", "site": 2, "dur": 125 * MS, "depth": 0, "timer": 1, "lag": 0},
    ]
    m = TraceModel(HEADER)
    m.append(as_read(events))
    during = m.state_at(len(events) - 1)
    assert during.running is not None and during.running.site == 2 and during.running.blocked_ns == 55 * MS
    after = m.state_at(len(events))
    assert after.running is None
    [blocking] = after.blocking
    assert (blocking.kind, blocking.t_ns, blocking.dur_ns) == ("timer", 5 * MS, 125 * MS)
    assert blocking.stack[-1].func == "inner" and blocking.stack[-1].line == 22


def test_callback_stats_percentile_is_close():
    m = TraceModel(HEADER)
    m.append(as_read(synthetic_events(0) + [
        {"t": i * MS, "ev": "call", "kind": "timer", "site": 1, "dur": (i + 1) * 1000, "depth": 0}
        for i in range(1, 1001)]))
    stats = m.state.callbacks[1]
    assert stats.count == 1000 and stats.max_ns == 1_001_000
    assert 0.9 * 991_000 <= stats.p99_ns <= 1_001_000


def test_pending_deferreds_follow_chains():
    m = TraceModel(HEADER)
    m.append(as_read([
        {"t": 1, "ev": "dnew", "d": 1, "site": 0}, {"t": 2, "ev": "dnew", "d": 2, "site": 0},
        {"t": 3, "ev": "dfire", "d": 1, "fail": False},
        {"t": 4, "ev": "dchain", "d": 1, "inner": 2},
    ]))
    assert set(m.state.pending_deferreds) == {1, 2}
    assert m.state.pending_deferreds[1].waiting_on == 2
    m.append(as_read([{"t": 5, "ev": "dfire", "d": 2, "fail": False}]))
    assert m.state.pending_deferreds == {}
    assert (m.state.deferreds_created, m.state.deferreds_fired) == (2, 2)
