"""The detail pane: the selected thing in words.

What ran, when, for how long, where it was scheduled or created, and its stack with the user's
own frames set apart; nothing the trace does not know is printed (no ``origin: unknown``, no
``error: None``).  One function per kind of row, picked by :func:`describe`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from tracer.lints import Lint
from tracer.model import (
    CallbackStats,
    DeferredInfo,
    DescriptorInfo,
    Frame,
    Stall,
    ThreadJob,
    UnhandledFailure,
    frames,
)
from tracer.names import (frame_name, is_user_file, kind_words, short_path, speaks_asyncio,
                          stall_culprit)
from tui.describe import (
    DURATION_FIELDS,
    MOMENT_FIELDS,
    Event,
    SiteLookup,
    culprit,
    duration,
    event_site_fields,
    millis,
    seconds,
    where,
)
from tui.text import clean

#: What a call's ``origin`` site is, by the call's kind: where a timer or a task step was
#: scheduled (a task's first step by create_task, a wake-up where its future was completed),
#: else where the Deferred whose callback it ran was created.
ORIGIN_WORDS = {"timer": "scheduled in", "task": "scheduled in"}
#: Histogram bins of the Callbacks detail: upper ends, in ns, round and about 3x apart
#: (1 µs, 3 µs, 10 µs ... 10 s).
HISTOGRAM_LIMITS = tuple(m * 10 ** e * 1000 for e in range(8) for m in (1, 3))[:-1]
BAR_WIDTH = 16


class Detail:
    """Builds one detail text: a title, lines, labelled lines, stacks."""

    def __init__(self, title: str) -> None:
        self.text = Text()
        self.text.append(clean(title) + "\n", style="bold")

    def line(self, *parts: str | Text) -> None:
        for part in parts:
            self.text.append(part)
        self.text.append("\n")

    def field(self, label: str, value: str) -> None:
        self.text.append(f"{label} ", style="bold dim")
        self.text.append(value + "\n")

    def heading(self, label: str) -> None:
        self.text.append(label + "\n", style="bold dim")

    def stack(self, label: str, stack: Sequence[Frame]) -> None:
        """Frames innermost last, the user's own marked ▶ and bright, the rest dim."""
        if not stack:
            return
        self.heading(f"{label} (innermost last; ▶ your code)")
        shown = None
        for frame in stack:
            row = (frame_name(frame.func), frame.file, frame.line)
            if row == shown:
                continue  # a generator expression on its function's line: the same place
            shown = row
            mine = is_user_file(frame.file)
            self.text.append("▶ " if mine else "  ", style="bold" if mine else "dim")
            self.text.append(f"{clean(frame_name(frame.func))}  "
                             f"{clean(short_path(frame.file))}:{frame.line}\n",
                             style="" if mine else "dim")


def describe(obj: object, model: SiteLookup, cursor_ns: int, runtime: str = "reactor") -> Text:
    """The detail pane's text for a row's object (or an event), in the words of ``runtime``
    (tracer.format.RUNTIMES) where they differ."""
    if isinstance(obj, Stall):
        return stall(obj, model, runtime)
    if isinstance(obj, CallbackStats):
        return callback(obj, model, runtime)
    if isinstance(obj, DescriptorInfo):
        return descriptor(obj, cursor_ns)
    if isinstance(obj, ThreadJob):
        return thread_job(obj, model, cursor_ns)
    if isinstance(obj, DeferredInfo):
        return deferred(obj, model, cursor_ns)
    if isinstance(obj, UnhandledFailure):
        return unhandled(obj, model)
    if isinstance(obj, Lint):
        return warning(obj, runtime)
    return Text(clean(obj, 400))


def _span(start_ns: int, dur_ns: int) -> str:
    return f"{millis(dur_ns)} ms, from {seconds(start_ns)} to {seconds(start_ns + dur_ns)}"


def stall(s: Stall, model: SiteLookup, runtime: str = "reactor") -> Text:
    call = s.call
    out = Detail(f"The loop was blocked {millis(call.dur_ns)} ms")
    out.field("when", f"from {seconds(call.t_ns)} to {seconds(call.t_ns + call.dur_ns)}")
    out.field("stuck in", culprit(stall_culprit(s, model.site)))
    out.field("the loop ran", f"{where(model.site(call.site))}, "
              f"{kind_words(call.kind, runtime)}")
    if call.origin:
        out.field(ORIGIN_WORDS.get(call.kind, "its Deferred created in"),
                  where(model.site(call.origin)))
    if s.chain:
        out.heading("nested in it, also past the threshold:")
        for nested in s.chain:
            out.line(f"  {millis(nested.dur_ns)} ms  {clean(nested.kind)}  ",
                     where(model.site(nested.site)))
    if s.stack:
        out.stack("stack, latest sample", s.stack)
    else:
        out.line(Text("no stack sample: the watchdog did not see it running", style="dim"))
    return out.text


def callback(stats: CallbackStats, model: SiteLookup, runtime: str = "reactor") -> Text:
    out = Detail(where(model.site(stats.site)))
    out.line(f"{kind_words(stats.kind, runtime)}: {stats.count:,} calls, "
             f"{millis(stats.total_ns)} ms in all")
    out.field("mean", f"{duration(int(stats.mean_ns))}  p50 {duration(stats.percentile_ns(0.5))}"
              f"  p90 {duration(stats.percentile_ns(0.9))}  p99 {duration(stats.p99_ns)}  "
              f"max {duration(stats.max_ns)}")
    if stats.blocking:
        out.line(Text(f"{stats.blocking:,} of them blocked the loop", style="bold"))
    counts = stats.binned(HISTOGRAM_LIMITS)
    used = [i for i, n in enumerate(counts) if n]
    if used:
        out.heading("durations (each bar: up to that long)")
        top = max(counts)
        for i in range(used[0], used[-1] + 1):
            bar = "█" * max(round(counts[i] / top * BAR_WIDTH), 1 if counts[i] else 0)
            limit = "longer" if i == len(counts) - 1 else f"≤{_round(HISTOGRAM_LIMITS[i])}"
            out.text.append(f"  {limit:>9} ", style="dim")
            out.text.append(bar.ljust(BAR_WIDTH), style="bold")
            out.text.append(f" {counts[i]:,}\n")
    return out.text


def _round(ns: int) -> str:
    """A round duration as written: ``3µs``, ``30ms``, ``1s``."""
    for scale, unit in ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs")):
        if ns >= scale:
            return f"{ns / scale:g}{unit}"
    return f"{ns}ns"


def descriptor(info: DescriptorInfo, cursor_ns: int) -> Text:
    out = Detail(f"fd {info.fd}")
    if info.role:
        peer = f" with {clean(info.peer)}" if info.peer else ""
        host = f" on {clean(info.host)}" if info.host else ""
        out.line(f"a {clean(info.role)} connection{peer}{host}")
    elif info.type:
        out.line(f"a {clean(info.type)}")
    watched = [w for w, on in (("reading", info.reading), ("writing", info.writing)) if on]
    out.field("the loop watches it for", " and ".join(watched) if watched else "nothing now")
    out.field("open", f"{(cursor_ns - info.opened_ns) / 1e9:.1f} s, since {seconds(info.opened_ns)}")
    if info.bytes_in is not None or info.bytes_out is not None:
        out.field("bytes", f"{info.bytes_in or 0:,} in, {info.bytes_out or 0:,} out")
    return out.text


def thread_job(job: ThreadJob, model: SiteLookup, cursor_ns: int) -> Text:
    out = Detail(f"thread-pool job {job.job}: {where(model.site(job.site))}")
    out.field("queued", f"at {seconds(job.submitted_ns)}")
    if job.started_ns is None:
        out.field("waiting", f"{millis(cursor_ns - job.submitted_ns)} ms so far, no thread free")
        return out.text
    out.field("waited", f"{millis(job.started_ns - job.submitted_ns)} ms for a thread")
    if job.done_ns is None:
        out.field("running", f"{millis(cursor_ns - job.started_ns)} ms so far")
    else:
        out.field("ran", _span(job.started_ns, job.done_ns - job.started_ns))
    if job.error:
        out.field("raised", clean(job.error, 300))
    return out.text


def deferred(info: DeferredInfo, model: SiteLookup, cursor_ns: int) -> Text:
    out = Detail(f"Deferred #{info.id}")
    created = f" in {where(model.site(info.site))}" if info.site else ""
    out.field("created", f"at {seconds(info.created_ns)}{created}, "
              f"{(cursor_ns - info.created_ns) / 1e9:.1f} s ago")
    out.field("callbacks", f"{info.n_callbacks:,} added")
    if info.fired_ns is None:
        out.field("not fired", "nobody has called callback() or errback() yet")
    else:
        out.field("fired", f"at {seconds(info.fired_ns)}")
    if info.waiting_on is not None:
        out.field("waits on", f"Deferred #{info.waiting_on} (a callback returned it)")
    if info.cancelled:
        out.line(Text("cancelled", style="italic"))
    return out.text


def unhandled(failure: UnhandledFailure, model: SiteLookup) -> Text:
    out = Detail(f"Unhandled {failure.exc}")
    if failure.msg:
        out.line(clean(failure.msg, 400))
    created = f", created in {where(model.site(failure.site))}" if failure.site else ""
    out.field("Deferred", f"#{failure.d}{created}")
    out.field("collected", f"at {seconds(failure.t_ns)}, still holding the failure: no errback "
              "had handled it")
    out.stack("traceback", failure.stack)
    if failure.created:
        out.stack("created at (defer.setDebugging)", failure.created)
    if failure.invoked:
        out.stack("first fired at (defer.setDebugging)", failure.invoked)
    return out.text


#: What each kind of warning means and where to look, for the detail pane.
WARNING_HELP = {
    "stalls": "The same line keeps blocking the loop: every other callback waits while it "
              "runs. Move the work to a thread (deferToThread) or split it up.",
    "pending": "Nothing has fired these yet. A request whose answer never came, a Deferred "
               "nobody keeps a reference to fire, or a missing timeout.",
    "failure": "These Deferreds end in a failure and no errback has run. It is reported as "
               "an unhandled error only when the Deferred is garbage-collected.",
    "late": "A timer ran well after its due time because the loop was busy with something "
            "else: see the Blocking view around those moments.",
    "pool": "Work waited for a free pool thread longer than it took: the pool is too small "
            "for the load, or its jobs block on each other.",
    "busy": "A callback that calls callLater(0, itself) runs again on every iteration: the "
            "loop never sleeps in poll, and a core stays busy.",
    "writer": "A descriptor watched for writing is writable almost always: the loop wakes at "
              "once every time. Stop watching it (removeWriter) when there is nothing to send.",
}


#: The same in asyncio's words, where a warning's advice differs.
ASYNCIO_WARNING_HELP = {
    "stalls": "The same line keeps blocking the loop: every other callback waits while it "
              "runs. Move the work to a thread (asyncio.to_thread, loop.run_in_executor) or "
              "split it up.",
    "pending": "Nothing has completed these yet. A request whose answer never came, a Future "
               "nobody sets, or a missing timeout (asyncio.timeout).",
    "failure": "These end in an exception that nobody has awaited or retrieved. asyncio reports "
               "it (\"exception was never retrieved\") only when the Task is garbage-collected.",
    "busy": "A callback that calls call_soon(itself) runs again on every iteration: the loop "
            "never sleeps in poll, and a core stays busy.",
    "writer": "A descriptor watched for writing is writable almost always: the loop wakes at "
              "once every time. Stop watching it (remove_writer) when there is nothing to send.",
}


def warning(lint: Lint, runtime: str = "reactor") -> Text:
    """A warning, with what it means and where to look in the words of ``runtime``."""
    out = Detail("Warning")
    out.line(clean(lint.text, 600))
    out.line("")
    help_text = WARNING_HELP.get(lint.kind, "")
    if speaks_asyncio(runtime):
        help_text = ASYNCIO_WARNING_HELP.get(lint.kind, help_text)
    out.line(Text(help_text, style="dim"))
    return out.text


def event(index: int, ev: Event, model: SiteLookup, runtime: str = "reactor") -> Text:
    """An event: a sentence for the kinds that ran code, then every other field in words."""
    kind = str(ev.get("ev", "?"))
    out = Detail(f"event #{index:,}: {kind}")
    shown = {"t", "ev"}
    site = ev.get("site")
    dur = ev.get("dur")
    t = ev.get("t")
    if kind in ("call", "dcall") and isinstance(site, int) and isinstance(dur, int) \
            and isinstance(t, int):
        what = kind_words(str(ev.get("kind", "deferred")), runtime)
        out.line(f"{what} ran {_span(t - dur, dur)}:")
        out.line("  ", where(model.site(site)))
        shown |= {"site", "dur", "kind"}
    elif isinstance(t, int):
        out.field("at", seconds(t))
    stack = ev.get("stack")
    site_fields = event_site_fields(kind)
    for key, value in ev.items():
        if key in shown or key == "stack" or value is None:
            continue
        if key in site_fields and isinstance(value, int):
            text = where(model.site(value)) if value else "unknown"
        elif key in DURATION_FIELDS and isinstance(value, int):
            text = duration(value)
        elif key in MOMENT_FIELDS and isinstance(value, int):
            text = seconds(value)
        else:
            text = clean(value, 400)
        out.field(clean(key, 20), text)
    out.stack("stack", frames(stack))
    return out.text
