"""Summaries kept between runs: summarising a trace again costs one small file read.

A trace of ten million events takes seconds to fold even compiled; a finished trace never
changes, so ``loopscope summary`` keeps what it found in a cache directory
(``$LOOPSCOPE_CACHE``, else ``$XDG_CACHE_HOME/loopscope``, else ``~/.cache/loopscope``; a
trace's own directory may not be writable), one file per trace path.  The entry records the
trace's size and modification time (ns), a digest of its first and last 64 KiB, the threshold
asked for, the warnings its bad lines
gave (they are given again) and a fingerprint of the code that made it.  It is used only when
all of these still match; otherwise the trace is folded again and the entry rewritten.

A trace still being written is not kept: one without its ``end`` line, or whose size or
modification time changed while it was read.  Nothing here is needed for a summary: an entry
that cannot be read or written is passed over.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import orjson

from tracer.format import SUMMARY_INDEX_VERSION
from tracer.reader import Warn, warn_stderr
from tracer.scan import fold
from tracer.summary import Summary, summary_of

#: The modules whose code decides what a summary holds: an entry made by other code is stale.
_CODE = ("format.py", "reader.py", "model.py", "names.py", "scan.py", "summary.py", "index.py")


def cache_dir() -> Path:
    """Where entries are kept."""
    chosen = os.environ.get("LOOPSCOPE_CACHE")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "loopscope"


def _code_fingerprint() -> list[list[int]]:
    here = Path(__file__).resolve().parent
    stats = [(here / name).stat() for name in _CODE]
    stats += [p.stat() for p in sorted(here.glob("_scan*.so"))]
    return [[s.st_size, s.st_mtime_ns] for s in stats]


def entry_path(trace: str) -> Path:
    """The entry of the trace at ``trace`` (named by a hash of its absolute path)."""
    key = hashlib.sha256(os.path.realpath(trace).encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir() / f"{key[:32]}.json"


#: Bytes at each end of the trace whose digest is part of its identity: a file rewritten in
#: place to the same size within the clock's tick (a few ms) keeps its size and mtime.
_ENDS = 1 << 16


def _ends_digest(trace: str, size: int) -> str:
    with open(trace, "rb") as f:
        head = f.read(_ENDS)
        f.seek(max(size - _ENDS, 0))
        return hashlib.sha256(head + f.read(_ENDS)).hexdigest()


def _identity(trace: str, threshold_ms: float | None) -> dict | None:
    try:
        st = os.stat(trace)
        if not stat.S_ISREG(st.st_mode):
            return None  # the fold refuses it in its own words
        ends = _ends_digest(trace, st.st_size)
    except OSError:
        return None
    return {"index": SUMMARY_INDEX_VERSION, "path": os.path.realpath(trace), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "ends": ends, "threshold_ms": threshold_ms,
            "code": _code_fingerprint()}


def _load(path: Path, identity: dict) -> dict | None:
    try:
        entry = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(entry, dict) or entry.get("identity") != identity:
        return None
    return entry


def _store(path: Path, entry: dict) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # summaries of private traces
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-")
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(entry))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full disk: the next summary folds the trace again


def indexed_summary(trace: str, threshold_ms: float | None = None,
                    warn: Warn = warn_stderr) -> Summary:
    """:func:`tracer.summary.summarize`, from the trace's entry when it is still valid."""
    identity = _identity(trace, threshold_ms)
    path = entry_path(trace)
    entry = _load(path, identity) if identity is not None else None
    if entry is not None:
        for message in entry["warnings"]:
            warn(message)
        summary = Summary(entry["summary"])
        summary.runtime, summary.unseen = entry["runtime"], entry["unseen"]
        return summary
    warnings: list[str] = []

    def keep(message: str) -> None:
        warnings.append(message)
        warn(message)

    folded = fold(trace, threshold_ms, keep)
    summary = summary_of(folded)
    if identity is not None and folded.builder.state.ended \
            and _identity(trace, threshold_ms) == identity:
        _store(path, {"identity": identity, "warnings": warnings, "summary": summary,
                      "runtime": summary.runtime, "unseen": summary.unseen})
    return summary
