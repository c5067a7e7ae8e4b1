"""A trace folder: one trace file per process of a run, read as one run on one timeline.

``loopscope run`` records an app and the processes it starts (forked children, Python programs,
multiprocessing workers) into one folder, a file each (tracer.session, tracer.spawned).  Each
file is a whole trace of its own, in its own time (``t`` counts from its header's
``start_wall``); its header names its parent (``ppid``, ``parent``).  This module composes
the per-file readers: it finds the traces, puts them on the folder's timeline (the earliest
``start_wall`` is 0), and builds the folder's summary (:func:`summarize_folder`, each process's
:func:`tracer.summary.summarize` plus every stall of every process in one list) and Chrome
export (:func:`export_folder_chrome`, each process's :func:`tracer.export.export_chrome` as a
Perfetto process track of its own pid).
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import IO

import orjson

from tracer.export import export_chrome
from tracer.reader import TraceError, Warn, read_header, warn_stderr
from tracer.summary import (  # the summary's own way to show trace text
    Summary,
    printable,
    place_text,
    format_text,
    summarize,
)

#: Flow ids of the n-th process are moved up by n times this, so that an arrow never joins two
#: processes (Chrome flow ids are global): well above any id one trace uses (counters, and
#: timers at 2**40 and above), well below 2**63.
FLOW_ID_SPAN = 1 << 48


@dataclass(frozen=True)
class ProcessTrace:
    """One process's trace in a folder, placed on the folder's timeline."""
    path: str
    header: dict
    #: Where its ``t = 0`` is on the folder's timeline, in ns.
    offset_ns: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def pid(self) -> int:
        return int(self.header.get("pid", 0))

    @property
    def ppid(self) -> int | None:
        ppid = self.header.get("ppid")
        return ppid if type(ppid) is int else None

    #: What it ran, in a few words (:func:`program_of`).
    program: str = "?"


def command_of(header: dict) -> str:
    """A trace's command line: its script and arguments (without interpreter options), or
    what multiprocessing started it as."""
    argv = [str(a) for a in header.get("argv", [])]
    command = " ".join(argv)
    if "multiprocessing.spawn import spawn_main" in command:
        return "multiprocessing worker (spawned)"
    if "multiprocessing.forkserver import main" in command:
        return "multiprocessing forkserver"
    while argv and argv[0].startswith("-") and argv[0] not in ("-m", "-c"):
        argv.pop(0)  # interpreter options (-B, -u)
    if argv and argv[0] not in ("-m", "-c"):
        argv[0] = os.path.basename(argv[0])
    return " ".join(argv) or "?"


def program_of(header: dict, parent: dict | None) -> str:
    """What a process ran, for people: its command, or, for a forked child (it keeps its
    parent's command), what it was forked from."""
    command = command_of(header)
    if parent is None or header.get("forked") is not True:
        return command
    if command_of(parent) == "multiprocessing forkserver":
        return "multiprocessing worker (from the forkserver)"
    return f"forked from {parent.get('pid')}: {command_of(parent)}"


def is_folder(path: str) -> bool:
    """Whether the reading commands take ``path`` as a trace folder."""
    return os.path.isdir(path)


def trace_files(folder: str) -> list[str]:
    """The trace files of ``folder`` (``*.jsonl``, regular files), by name."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise TraceError(f"cannot read the folder {folder}: {e.strerror}") from None
    files = []
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".jsonl") and not name.startswith("."):
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    files.append(path)
            except OSError:
                continue  # gone since listed
    return files


def start_wall(header: dict) -> float:
    """A trace's ``t = 0`` in Unix time (a header without it counts as the earliest)."""
    return float(header.get("start_wall", 0.0))


def place(headers: list[tuple[str, dict]]) -> list[ProcessTrace]:
    """The traces on one timeline (the earliest start is 0), parents before their children,
    else in the order they started."""
    if not headers:
        return []
    base = min(start_wall(h) for _, h in headers)
    by_name = {os.path.basename(path): h for path, h in headers}
    traces = [ProcessTrace(path, h, round((start_wall(h) - base) * 1e9),
                           program_of(h, by_name.get(str(h.get("parent")))))
              for path, h in headers]
    traces.sort(key=lambda p: p.offset_ns)
    by_pid = {p.pid: p for p in traces}
    ordered: list[ProcessTrace] = []

    def add(p: ProcessTrace) -> None:
        ordered.append(p)
        for child in traces:
            if child.ppid == p.pid and child is not p and child not in ordered:
                add(child)

    for p in traces:
        if p not in ordered and (p.ppid is None or p.ppid not in by_pid):
            add(p)
    ordered += [p for p in traces if p not in ordered]  # a cycle of reused pids
    return ordered


def open_folder(folder: str, warn: Warn = warn_stderr) -> list[ProcessTrace]:
    """The traces of ``folder``.  A file that is not a readable trace is left out with a
    warning naming it; a folder without any trace is a TraceError."""
    headers = []
    for path in trace_files(folder):
        try:
            headers.append((path, read_header(path)))
        except TraceError as e:
            warn(f"{e}; left out")
    if not headers:
        raise TraceError(f"{folder} holds no loopscope trace (no readable *.jsonl file)")
    return place(headers)


def _warn_in(name: str, warn: Warn) -> Warn:
    """A warning sink that says which file of the folder a warning is about."""
    return lambda message: warn(f"{name}: {message}")


def summarize_folder(folder: str, threshold_ms: float | None = None,
                     warn: Warn = warn_stderr) -> dict:
    """The folder's summary: ``processes``, each process's summary (the ``summary --json``
    contract) with ``pid``, ``ppid``, ``file``, ``program`` and ``start_ms`` (on the folder's
    timeline); and ``stalls``, every process's stalls, longest first, each with its ``pid``
    and its ``t_ms`` on the folder's timeline."""
    processes = []
    stalls = []
    for p in open_folder(folder, warn):
        summary = summarize(p.path, threshold_ms, _warn_in(p.name, warn))
        start_ms = round(p.offset_ns / 1e6, 3)
        processes.append({"pid": p.pid, "ppid": p.ppid, "file": p.name, "program": p.program,
                          "start_ms": start_ms, "summary": summary})
        stalls += [{**s, "pid": p.pid, "t_ms": round(s["t_ms"] + start_ms, 3)}
                   for s in summary["stalls"]]
    stalls.sort(key=lambda s: (-s["dur_ms"], s["t_ms"]))
    return {"folder": folder, "processes": processes, "stalls": stalls}


def format_folder_text(result: dict, top: int = 15) -> str:
    """The folder's summary for a terminal: the processes, every stall on one timeline, then
    each process's own summary (tracer.summary.format_text)."""
    processes = result["processes"]
    end_ms = max((p["start_ms"] + p["summary"]["duration_ms"] for p in processes), default=0.0)
    plural = "es" if len(processes) != 1 else ""
    lines = [f"{len(processes)} process{plural} over {end_ms / 1000:,.2f} s, one trace file each",
             "",
             (f"  {'pid':>7}  {'parent':>7}  {'start s':>7}  {'events':>8}  {'stalls':>6}  "
              f"{'worst ms':>8}  program")]
    for p in processes:
        s = p["summary"]
        worst = max((x["dur_ms"] for x in s["stalls"]), default=0.0)
        parent = "-" if p["ppid"] is None else str(p["ppid"])
        lines.append(f"  {p['pid']:>7}  {parent:>7}  {p['start_ms'] / 1000:7,.2f}  "
                     f"{s['events']:8,d}  {len(s['stalls']):6,d}  {worst:8,.1f}  "
                     f"{printable(p['program'])}")
    lines.append("")
    stalls = result["stalls"]
    if stalls:
        lines.append(f"Stalls in every process ({len(stalls):,}), longest first, at the "
                     f"time on the run's timeline:")
        lines.append(f"  {'ms':>9}  {'at s':>8}  {'pid':>7}  {'kind':<8}  stalled in")
        for s in stalls[:top]:
            lines.append(f"  {s['dur_ms']:9,.1f}  {s['t_ms'] / 1000:8,.2f}  {s['pid']:>7}  "
                         f"{printable(s['kind']):<8}  {place_text(s, callback=False)}")
        if len(stalls) > top:
            lines.append(f"  … {len(stalls) - top:,} more stalls (loopscope summary --json "
                         f"lists them all)")
    else:
        lines.append("No process blocked its loop.")
    for p in processes:
        summary = Summary(p["summary"])
        summary.runtime = getattr(p["summary"], "runtime", "reactor")
        summary.unseen = getattr(p["summary"], "unseen", "")
        lines += ["", f"== pid {p['pid']} ({printable(p['file'])}): {printable(p['program'])} ==",
                  format_text(summary, top)]
    return "\n".join(lines)


def export_folder_chrome(folder: str, out: IO[bytes], warn: Warn = warn_stderr) -> int:
    """Write the folder as one Chrome trace JSON to ``out``: each process's export as the
    Perfetto process of its own pid, shifted onto the folder's timeline; returns the number
    of trace events."""
    count = 0

    def emit(ev: dict) -> None:
        nonlocal count
        out.write((b",\n" if count else b"\n") + orjson.dumps(ev))
        count += 1

    out.write(b'{"displayTimeUnit":"ms","traceEvents":[')
    for index, p in enumerate(open_folder(folder, warn)):
        buffer = io.BytesIO()
        export_chrome(p.path, buffer, _warn_in(p.name, warn))
        shift_us = p.offset_ns / 1000.0
        for ev in orjson.loads(buffer.getvalue())["traceEvents"]:
            ev["pid"] = p.pid
            if "ts" in ev:
                ev["ts"] += shift_us
            if ev.get("ph") in ("s", "f") and type(ev.get("id")) is int:
                ev["id"] += index * FLOW_ID_SPAN
            if ev.get("s") == "g":
                ev["s"] = "p"  # a mark belongs to its process, not to every track
            if ev.get("ph") == "M" and ev.get("name") == "process_name":
                ev["args"] = {"name": f"pid {p.pid}: {p.program}"}
            emit(ev)
        emit({"ph": "M", "name": "process_sort_index", "pid": p.pid,
              "args": {"sort_index": index}})
    out.write(b"\n]}\n")
    return count


def otlp_folder(folder: str, span_over_ms: float | None = None, service: str | None = None,
                warn: Warn = warn_stderr) -> tuple[list[dict], dict]:
    """The folder as one OpenTelemetry trace: the trace requests of every process (each its
    own resource, with its pid and its parent's), and one metrics request with each one's
    loop metrics.  The trace id is the first process's (the one that started the run)."""
    from tracer import otlp

    traces: list[dict] = []
    metrics: list[dict] = []
    trace_id = None
    for number, p in enumerate(open_folder(folder, warn)):
        if trace_id is None:
            trace_id = otlp.trace_id_of(p.header)
        requests, metrics_request = otlp.build(p.path, span_over_ms, service,
                                               _warn_in(p.name, warn), trace_id, number)
        traces += requests
        metrics += metrics_request["resourceMetrics"]
    return traces, {"resourceMetrics": metrics}
