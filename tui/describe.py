"""Words for trace data: sites, times, durations and one-line event summaries.

Kept apart from the widgets so that every view (and the detail pane, :mod:`tui.detail`)
describes a site, a time or a duration the same way, and so that all trace text passes
through :mod:`tui.text` in one place.
"""

from __future__ import annotations

from typing import Protocol

from rich.text import Text

from tracer.model import Site
from tracer.names import is_inherited, short_path
from tui.text import clean

#: One event as the model gives it back: the fields of docs/trace-format.md.
Event = dict[str, object]

# Fields that hold a site id: ``site`` anywhere, ``origin`` of a BlockingCall
# (where it was scheduled/created), ``fn`` of timer/tsub, ``cb``/``eb`` of dadd.
_SITE_FIELDS = frozenset({"site", "origin"})
_SITE_FIELDS_BY_KIND = {"timer": {"fn"}, "tsub": {"fn"}, "dadd": {"cb", "eb"}}
#: Event fields that are durations, and those that are moments (trace times), in ns.
DURATION_FIELDS = frozenset({"dur", "lag", "wait", "blocked", "dt", "busy", "idle", "lag_max",
                             "lag_mean"})
MOMENT_FIELDS = frozenset({"t", "since", "due"})


def event_site_fields(kind: str) -> frozenset[str]:
    """The fields of an event of ``kind`` that hold site ids (none in a ``site`` line)."""
    if kind == "site":
        return frozenset()
    return _SITE_FIELDS | _SITE_FIELDS_BY_KIND.get(kind, set())


def site_ids(event: Event) -> list[int]:
    """The site ids an event refers to."""
    fields = event_site_fields(str(event.get("ev")))
    return [v for k, v in event.items() if k in fields and isinstance(v, int) and v]


class SiteLookup(Protocol):
    """What naming a site needs of the model (tests pass a fake)."""

    def site(self, site_id: int) -> Site: ...


def seconds(t_ns: float) -> str:
    """A trace time as seconds with millisecond precision."""
    return f"{t_ns / 1e9:.3f}s"


def millis(ns: float) -> str:
    """A duration in milliseconds, one decimal."""
    return f"{ns / 1e6:.1f}"


def duration(ns: int) -> str:
    """A duration for reading: ``15µs``, ``1.5ms``, ``250.0ms``, ``3.2s``."""
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}µs"
    return f"{ns / 1e6:.1f}ms" if ns < 1_000_000_000 else f"{ns / 1e9:.1f}s"


def where(site: Site) -> str:
    """``fn (file:line)`` for a callback's Site, the path as :func:`tracer.names.short_path`
    gives it; an inherited method says that the place is where it is defined."""
    fn = clean(site.fn or "?")
    if not site.file:
        return fn
    location = f"{clean(short_path(site.file))}:{site.line}"
    if is_inherited(site):
        return f"{fn} (inherited, defined at {location})"
    return f"{fn} ({location})"


def culprit(site: Site) -> str:
    """``function (file:line)`` for the user's code a stall was stuck in (a frame's function
    and the line it was at, from :func:`tracer.names.stall_culprit`)."""
    if not site.file:
        return clean(site.fn)
    return f"{clean(site.fn)} ({clean(short_path(site.file))}:{site.line})"


def site_name(site: Site) -> str:
    """A Site's last two name parts (``Class.method`` or ``module.func``),
    for table columns; the detail pane shows the full name."""
    return ".".join(clean(site.fn or "?").split(".")[-2:])


def event_line(model: SiteLookup, event: Event, t_ns: int, threshold_ns: int | None = None) -> Text:
    """One event as a log line: time, kind, then its fields with sites named.  Stall samples
    and calls longer than ``threshold_ns`` stand out (bold, in red)."""
    kind = str(event.get("ev", "?"))
    dur = event.get("dur")
    stalled = kind == "stall" or (threshold_ns is not None and isinstance(dur, int)
                                  and dur > threshold_ns)
    line = Text(no_wrap=True, style="bold red" if stalled else "")
    line.append(f"{t_ns / 1e9:12.6f} ", style="dim")
    line.append(clean(kind, 9).ljust(9), style="bold")
    site_fields = event_site_fields(kind)
    for key, value in event.items():
        if key in ("t", "ev"):
            continue
        if key in site_fields and isinstance(value, int):
            shown = where(model.site(value)) if value else "-"
        elif key in DURATION_FIELDS and isinstance(value, int):
            shown = duration(value)
        elif key in MOMENT_FIELDS and isinstance(value, int):
            shown = seconds(value)
        elif key == "file" and isinstance(value, str):   # a site's: the recording machine's
            shown = clean(short_path(value), 120)      # directories mean nothing here
        else:
            shown = clean(value, 120)
        line.append(f" {clean(key, 20)}=", style="dim")
        line.append(shown)
    return line
