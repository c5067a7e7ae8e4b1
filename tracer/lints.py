"""Warnings about a traced program, the counterpart of tokio-console's lints.

Each is a sentence naming a site and a count, computed from the state at some moment (the
dashboard's cursor): Deferreds pending too long, failures nobody handled yet, timers running
late, pool jobs that queued longer than they ran, callbacks that re-schedule themselves at once
(a busy loop), writers with nothing to write, and the same code stalling again and again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from tracer.model import Site, TraceState
from tracer.names import short_path, speaks_asyncio, stall_culprit

#: A Deferred pending this long is worth a look (a request that never got its answer).
PENDING_NS = 5_000_000_000
#: Zero-delay self-reschedules that make a busy loop rather than a one-off "run it next".
RESPAWNS = 20
#: Polls that returned at once for a writer before it counts as having nothing to write.
BUSY_POLLS = 20
#: Stalls at the same line that make it a pattern rather than bad luck.
REPEATED_STALLS = 2


@dataclass(frozen=True)
class Lint:
    """One warning: ``kind`` (a short word for sorting and tests), the sentence, the site it
    is about (0 for a descriptor) and how many things it counts."""
    kind: str
    text: str
    site: int
    count: int


def _place(site: Site) -> str:
    if not site.file:
        return site.fn
    return f"{site.fn} ({short_path(site.file)}:{site.line})"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def lints(state: TraceState, site: Callable[[int], Site], now_ns: int) -> list[Lint]:
    """Every warning about ``state`` at trace time ``now_ns``, most pressing kinds first."""
    found: list[Lint] = []
    found += _repeated_stalls(state, site)
    found += _pending(state, site, now_ns)
    found += _failing(state, site, now_ns)
    for stats in state.callbacks.values():
        name = _place(site(stats.site))
        if stats.respawns >= RESPAWNS:
            found.append(Lint("busy", f"{name} re-schedules itself to run at once: "
                              f"{stats.respawns:,} times so far, so the loop never sleeps while "
                              "it does (a busy loop; give it a delay)", stats.site, stats.respawns))
        if stats.late:
            found.append(Lint("late", f"{name} started late {stats.late:,} of "
                              f"{stats.count:,} times, up to {stats.lag_max_ns / 1e6:,.1f} ms "
                              "after it was due (something else held the loop)",
                              stats.site, stats.late))
    found += _queued(state, site)
    for info in state.descriptors.values():
        if info.writing and info.busy_polls >= BUSY_POLLS:
            what = info.peer or info.type or "descriptor"
            found.append(Lint("writer", f"fd {info.fd} ({what}) is watched for writing with "
                              f"nothing to write: the loop woke for it {info.busy_polls:,} times "
                              "without sleeping", 0, info.busy_polls))
    return found


def _repeated_stalls(state: TraceState, site: Callable[[int], Site]) -> list[Lint]:
    by_line: dict[Site, list[int]] = defaultdict(list)
    for stall in state.stalls:
        by_line[stall_culprit(stall, site)].append(stall.call.dur_ns)
    return [Lint("stalls", f"{_place(where)} blocked the loop {len(durations):,} times, "
                 f"{sum(durations) / 1e6:,.0f} ms in all (longest {max(durations) / 1e6:,.0f} ms)",
                 0, len(durations))
            for where, durations in sorted(by_line.items(), key=lambda kv: -sum(kv[1]))
            if len(durations) >= REPEATED_STALLS]


def _pending(state: TraceState, site: Callable[[int], Site], now_ns: int) -> list[Lint]:
    old: dict[int, list[int]] = defaultdict(list)
    for info in state.pending_deferreds.values():
        age = now_ns - info.created_ns
        if age > PENDING_NS and info.waiting_on is None:
            old[info.site].append(age)
    thing = "Task" if speaks_asyncio(state.runtime) else "Deferred"
    return [Lint("pending", f"{_plural(len(ages), thing)} created in "
                 f"{_place(site(where))} pending for over {PENDING_NS / 1e9:g} s "
                 f"(the oldest {max(ages) / 1e9:,.1f} s)", where, len(ages))
            for where, ages in sorted(old.items(), key=lambda kv: -len(kv[1]))]


def _failing(state: TraceState, site: Callable[[int], Site], now_ns: int) -> list[Lint]:
    held: dict[int, list[int]] = defaultdict(list)
    for created, failed_ns in state.failing.values():
        held[created].append(now_ns - failed_ns)
    thing, unhandled = (("Task", "an exception nobody has retrieved yet")
                        if speaks_asyncio(state.runtime) else
                        ("Deferred", "a failure no errback has handled yet"))
    return [Lint("failure", f"{_plural(len(ages), thing)} created in "
                 f"{_place(site(where))} hold {unhandled} "
                 f"(for up to {max(ages) / 1e9:,.1f} s)", where, len(ages))
            for where, ages in sorted(held.items(), key=lambda kv: -len(kv[1]))]


def _queued(state: TraceState, site: Callable[[int], Site]) -> list[Lint]:
    jobs: dict[int, list[bool]] = defaultdict(list)
    for job in state.threads.values():
        if job.started_ns is not None and job.done_ns is not None:
            jobs[job.site].append(job.started_ns - job.submitted_ns > job.done_ns - job.started_ns)
    return [Lint("pool", f"{_place(site(where))}: {sum(waited):,} of "
                 f"{_plural(len(waited), 'thread-pool job')} waited in the queue longer than "
                 "they ran (the pool is too small for the work)", where, sum(waited))
            for where, waited in jobs.items() if any(waited)]
