"""Words for trace objects: one-line event summaries and the detail pane.

Kept apart from the widgets so that every view describes a site, a time or a
stack the same way, and so that all trace text passes through
:mod:`tui.text` in one place.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from rich.text import Text

from tracer.model import Frame, Site
from tui.text import clean

#: One event as the model gives it back: the fields of docs/trace-format.md.
Event = dict[str, object]

# Fields that hold a site id: ``site`` anywhere, ``origin`` of a BlockingCall
# (where it was scheduled/created), ``fn`` of timer/tsub, ``cb``/``eb`` of dadd.
_SITE_FIELDS = {"site", "origin"}
_SITE_FIELDS_BY_KIND = {"timer": {"fn"}, "tsub": {"fn"}, "dadd": {"cb", "eb"}}
_DURATION_FIELDS = {"dur", "lag", "wait", "blocked", "dt", "busy", "idle", "lag_max", "lag_mean"}
_MOMENT_FIELDS = {"t", "since", "due"}   # event fields that are trace times


def site_ids(event: Event) -> list[int]:
    """The site ids an event refers to (none for a ``site`` line itself)."""
    kind = event.get("ev")
    if kind == "site":
        return []
    fields = _SITE_FIELDS | _SITE_FIELDS_BY_KIND.get(str(kind), set())
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
    """A duration for reading: ``15µs``, ``1.5ms``, ``250.0ms``."""
    return f"{ns / 1e3:.0f}µs" if ns < 1_000_000 else f"{ns / 1e6:.1f}ms"


def where(site: Site) -> str:
    """``fn (file:line)`` for a Site, with the file's directories dropped."""
    fn = clean(site.fn or "?")
    file = clean(site.file or "")
    if not file:
        return fn
    return f"{fn} ({file.rsplit('/', 1)[-1]}:{site.line})"


def site_name(site: Site) -> str:
    """A Site's last two name parts (``Class.method`` or ``module.func``),
    for table columns; the detail pane shows the full name."""
    return ".".join(clean(site.fn or "?").split(".")[-2:])


def event_line(model: SiteLookup, event: Event, t_ns: int) -> Text:
    """One event as a log line: time, kind, then its fields with sites named."""
    kind = str(event.get("ev", "?"))
    line = Text(no_wrap=True)
    line.append(f"{t_ns / 1e9:12.6f} ", style="dim")
    line.append(clean(kind, 9).ljust(9), style="bold")
    site_fields = _SITE_FIELDS | _SITE_FIELDS_BY_KIND.get(kind, set())
    for key, value in event.items():
        if key in ("t", "ev"):
            continue
        if key in site_fields and isinstance(value, int) and kind != "site":
            shown = where(model.site(value)) if value else "-"
        elif key in _DURATION_FIELDS and isinstance(value, int):
            shown = duration(value)
        elif key in _MOMENT_FIELDS and isinstance(value, int):
            shown = seconds(value)
        else:
            shown = clean(value, 120)
        line.append(f" {clean(key, 20)}=", style="dim")
        line.append(shown)
    return line


def detail(title: str, obj: object, model: SiteLookup | None = None) -> Text:
    """Every field of ``obj`` (a dataclass or an event dict), one per line;
    stacks are printed one frame per line, sites as ``fn (file:line)``."""
    out = Text()
    out.append(clean(title) + "\n", style="bold")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items: list[tuple[str, object]] = [
            (f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if not isinstance(getattr(obj, f.name), dict)]
        items += [(name, getattr(obj, name)) for name, attr in vars(type(obj)).items()
                  if isinstance(attr, property)]
        kind = None
    elif isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items()]
        kind = obj.get("ev")
    else:
        items = [("value", obj)]
        kind = None
    site_fields = _SITE_FIELDS | _SITE_FIELDS_BY_KIND.get(str(kind), set())
    for key, value in items:
        out.append(f"{_label(key)}: ", style="bold dim")
        if isinstance(value, (list, tuple)) and value and (
                isinstance(value[0], (list, tuple)) or dataclasses.is_dataclass(value[0])):
            out.append("\n")
            for item in value:
                out.append("  " + _frame(item) + "\n")
            continue
        if model is not None and key in site_fields and isinstance(value, int):
            out.append(where(model.site(value)) if value else "unknown")
        elif key.endswith("_ns") and isinstance(value, (int, float)):
            moment = key.startswith(_MOMENTS)
            out.append(seconds(value) if moment else f"{millis(value)} ms")
        elif kind is not None and key in _DURATION_FIELDS and isinstance(value, int):
            out.append(f"{millis(value)} ms")
        elif kind is not None and key in _MOMENT_FIELDS and isinstance(value, int):
            out.append(seconds(value))
        else:
            out.append(clean(value, 400))
        out.append("\n")
    return out


def _label(key: str) -> str:
    """A field name for the detail pane: ``t_ns`` is shown as seconds under
    "at", ``dur_ns`` as ms under "duration", other ``x_ns`` under "x"."""
    if key.endswith("_ns"):
        key = key[:-3]
        return {"t": "at", "dur": "duration"}.get(key, key)
    return clean(key)


# ``*_ns`` fields that are points in time (the others are durations).
_MOMENTS = ("t_", "since", "created", "submitted", "started", "done", "opened", "fired")


def _frame(item: object) -> str:
    """A stack frame (a Frame or a [file, line, func] triple)."""
    if isinstance(item, Frame):
        file, line, func = item.file, item.line, item.func
    elif isinstance(item, (list, tuple)) and len(item) == 3:
        file, line, func = item
    else:
        return clean(item, 300)
    return f"{clean(func)}  {clean(str(file).rsplit('/', 1)[-1])}:{line}"


