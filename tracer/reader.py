"""Reading trace files: streaming, tolerant of damage, and able to follow a live file.

A trace may be read while another process is still writing it, or after that process was
killed, so the reader accepts what a recorder can leave behind (a partial last line) and skips
what it cannot parse with a warning naming the line, instead of failing the whole file.  A file
that is not a trace at all is refused with one sentence (:class:`TraceError`) that the CLI prints.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import IO
from collections.abc import Callable, Iterator

import orjson

from tracer.files import describe_mode
from tracer.format import HEADER, READABLE_VERSIONS, VERSION, check_fields, check_event, event_from_row

#: Lines longer than this are skipped with a warning.  The recorder's lines are at most tens
#: of KiB (application text is cut: tracer.format.MAX_TEXT, MAX_FRAMES, MAX_ARGS), but a
#: rewritten or hand-made trace may hold long ones, which are read; beyond this a line is
#: damage, and holding it would cost that much memory.
MAX_LINE = 64 << 20

Warn = Callable[[str], None]


class TraceError(Exception):
    """A one-sentence reason why a file cannot be read as a trace."""


def warn_stderr(message: str) -> None:
    """Default warning sink: one line on stderr, in the CLI's style."""
    print(f"loopscope: warning: {message}", file=sys.stderr)


def parse_header(line: bytes, name: str) -> dict:
    """Check that ``line`` is a trace header of a version this reader knows and return it."""
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("ev") != "trace":
        raise TraceError(f"{name} is not a loopscope trace (its first line is not a trace header)")
    version = header.get("v")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise TraceError(
            f"{name} is trace format version {version!r}; this loopscope reads version {VERSION}"
        )
    problem = check_fields(header, HEADER)
    if problem is not None:
        raise TraceError(f"{name} has a damaged trace header ({problem})")
    return header


class _Checked(io.BufferedReader):
    """A trace file whose read errors (EIO) are a TraceError naming it, like open errors."""

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except OSError as e:
            raise TraceError(f"cannot read {self.name}: {e.strerror or e}") from None

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return super().readline(size)
        except OSError as e:
            raise TraceError(f"cannot read {self.name}: {e.strerror or e}") from None


def open_trace(path: str) -> IO[bytes]:
    """Open ``path`` for binary reading, turning OS errors into a TraceError.

    Only a regular file is opened: the type is looked at first, so that a FIFO (which would
    block until a writer comes) or a device is refused in one sentence, never waited on.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise TraceError(f"{path} is {describe_mode(mode)}, not a trace file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TraceError(f"{path} does not exist") from None
    except OSError as e:
        raise TraceError(f"cannot open {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the two looks
        os.close(fd)
        raise TraceError(f"{path} is not a regular file, not a trace file")
    os.set_blocking(fd, True)
    raw = io.FileIO(fd, "rb")
    raw.name = path  # messages name the file, not its descriptor
    return _Checked(raw, buffer_size=1 << 16)


def read_header_line(f: IO[bytes], name: str) -> bytes:
    """Read the first line, without reading a huge non-trace first line into memory."""
    line = f.readline(MAX_LINE)
    if not line:
        raise TraceError(f"{name} is empty, not a trace")
    if not line.endswith(b"\n") and len(line) >= MAX_LINE:
        raise TraceError(f"{name} is not a loopscope trace (its first line is not a trace header)")
    return line


def decode(line: bytes | bytearray) -> object:
    """Parse a line into an event dict (compact rows become objects); raises on bad JSON."""
    event = orjson.loads(line)
    if type(event) is list:
        return event_from_row(event)
    return event


def parse_event(line: bytes, lineno: int, warn: Warn) -> dict | None:
    """Parse one event line; a bad line is reported (with its number) and gives None."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        warn(f"line {lineno} is not valid JSON; skipped")
        return None
    if type(event) is list:
        event = event_from_row(event)
        if event is None:
            warn(f"line {lineno} is not a trace event (not a well-formed compact row); skipped")
            return None
    problem = check_event(event)
    if problem is not None:
        warn(f"line {lineno} is not a trace event ({problem}); skipped")
        return None
    return event  # check_event proved it is a dict


def too_long(lineno: int) -> str:
    return f"line {lineno} is longer than {MAX_LINE >> 20} MiB; skipped"


def iter_blocks(f: IO[bytes], warn: Warn, first_lineno: int = 2,
                chunk_size: int = 1 << 22) -> Iterator[tuple[int, bytes]]:
    """Yield ``(number of its first line, block)`` from ``f``'s current position, each block
    whole lines ending in a newline (a compiled scanner takes a block at a time).

    Reads in chunks (a trace has millions of short lines).  A final line without its newline
    is a line still being written and is not yielded; a line longer than :data:`MAX_LINE`
    across chunks is skipped with a warning, without being held in memory whole (a longer one
    inside a block is the reader of the block's to skip).
    """
    lineno = first_lineno
    pending = b""
    skipping = False  # inside an over-long line
    while True:
        chunk = f.read(chunk_size)
        if not chunk:
            return
        data = pending + chunk if pending else chunk
        if skipping:
            cut = data.find(b"\n")
            if cut < 0:
                pending = b""
                continue
            skipping = False
            warn(too_long(lineno))
            lineno += 1
            data = data[cut + 1:]
        end = data.rfind(b"\n") + 1
        pending = data[end:]
        if end:
            block = data[:end] if pending else data
            yield lineno, block
            lineno += block.count(b"\n")
        if len(pending) > MAX_LINE:
            pending = b""
            skipping = True


def parse_line(line: bytes, lineno: int, warn: Warn) -> dict | None:
    """:func:`parse_event` for a line of any length (one past :data:`MAX_LINE` is skipped
    with its warning): for a reader of whole blocks, which meets such lines itself."""
    if len(line) > MAX_LINE:
        warn(too_long(lineno))
        return None
    return parse_event(line, lineno, warn)


def block_events(block: bytes, first_lineno: int, warn: Warn) -> Iterator[tuple[dict, bytes]]:
    """``(event, line)`` for each good line of ``block`` (whole lines, each ending in a
    newline, the first numbered ``first_lineno``); empty lines are passed over, bad ones
    warned about."""
    for lineno, line in enumerate(block.split(b"\n")[:-1], first_lineno):
        event = parse_line(line, lineno, warn) if line else None
        if event is not None:
            yield event, line


def iter_lines(f: IO[bytes], warn: Warn, first_lineno: int = 2,
               chunk_size: int = 1 << 22) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, complete line)`` from ``f``'s current position (as
    :func:`iter_blocks` reads them); empty lines are passed over, over-long ones skipped with
    a warning."""
    for lineno, block in iter_blocks(f, warn, first_lineno, chunk_size):
        for line in block.split(b"\n")[:-1]:
            if len(line) > MAX_LINE:
                warn(too_long(lineno))
            elif line:
                yield lineno, line
            lineno += 1


def iter_events(f: IO[bytes], warn: Warn) -> Iterator[dict]:
    """The parsed events from ``f``'s current position (after its header): bad lines are
    warned about and skipped."""
    for lineno, line in iter_lines(f, warn):
        event = parse_event(line, lineno, warn)
        if event is not None:
            yield event


def read_header(path: str) -> dict:
    """The header of a trace file; raises TraceError when ``path`` is not a readable trace."""
    with open_trace(path) as f:
        return parse_header(read_header_line(f, path), path)


def read_trace(path: str, warn: Warn = warn_stderr) -> tuple[dict, Iterator[dict]]:
    """Return the header and an iterator over the parsed events of a trace file.

    Raises TraceError at once when the file is not a trace; the iterator itself never raises
    on bad data (it warns and skips).
    """
    f = open_trace(path)
    try:
        header = parse_header(read_header_line(f, path), path)
    except BaseException:
        f.close()
        raise

    def events() -> Iterator[dict]:
        with f:
            yield from iter_events(f, warn)

    return header, events()


class Follower:
    """Read a trace incrementally: load it in chunks, then follow what another process appends.

    Call :meth:`poll` as often as you like (the dashboard does it about ten times a second):
    it returns the events completed since the last call, each with its line as read (so a
    model can keep the line instead of encoding the event again), and never blocks.  ``max_bytes``
    bounds one call's work, so a big file can be loaded chunk by chunk with a progress bar
    (:attr:`offset` / :meth:`size`).  The header may not exist yet when following starts —
    nor the file itself when ``wait=True`` — and :attr:`header` is None until it does.
    """

    def __init__(self, path: str, warn: Warn = warn_stderr, wait: bool = False) -> None:
        self.path = path
        self.header: dict | None = None
        #: Bytes of the file consumed so far (complete lines only).
        self.offset = 0
        self._warn = warn
        self._f: IO[bytes] | None = None
        self._lineno = 1
        self._pending = b""
        self._skipped = 0  # bytes dropped so far of a line longer than MAX_LINE
        if not wait:
            self._f = open_trace(path)

    def _file(self) -> IO[bytes] | None:
        if self._f is None and os.path.exists(self.path):
            self._f = open_trace(self.path)
        return self._f

    def poll(self, max_bytes: int | None = None) -> list[tuple[dict, bytes]]:
        """Return ``(event, line)`` for the events completed since the previous call (as
        :meth:`poll_block` reads them)."""
        block = self.poll_block(max_bytes)
        if block is None:
            return []
        lineno, _offset, data = block
        return list(block_events(data, lineno, self._warn))

    def poll_block(self, max_bytes: int | None = None) -> tuple[int, int, bytes] | None:
        """The lines completed since the previous call, after the header, as ``(number of
        the first line, its byte offset in the file, the lines)``: whole lines, each ending
        in a newline; None when there are none.

        A line longer than ``max_bytes`` is read on until it ends (or the file does), so that
        a caller reading chunk by chunk sees progress on every call until the end of the file;
        one longer than :data:`MAX_LINE` is left out with a warning.
        """
        f = self._file()
        if f is None:
            return None
        size = -1 if max_bytes is None else max_bytes
        chunk = f.read(size)
        data = self._pending + chunk
        while 0 < size == len(chunk) and b"\n" not in chunk and len(data) <= MAX_LINE:
            chunk = f.read(size)
            data += chunk
        if self._skipped:  # inside a line longer than MAX_LINE: drop it up to its end
            cut = data.find(b"\n")
            if cut < 0:
                self._skipped += len(data)
                self._pending = b""
                return None
            self._warn(too_long(self._lineno))
            self._lineno += 1
            self.offset += self._skipped + cut + 1
            self._skipped = 0
            data = data[cut + 1:]
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > MAX_LINE:
                if self.header is None:
                    raise TraceError(f"{self.path} is not a loopscope trace (its first line is "
                                     f"not a trace header)")
                self._skipped, self._pending = len(data), b""
            else:
                self._pending = data
            return None
        self._pending = data[end + 1:]
        start = self.offset
        self.offset += end + 1
        if self.header is None:
            first = data.index(b"\n")
            self.header = parse_header(data[:first], self.path)
            self._lineno += 1
            start += first + 1
            data = data[first + 1:]
            end -= first + 1
        if end < 0:
            return None
        lineno = self._lineno
        block = data[: end + 1]
        self._lineno += block.count(b"\n")
        return lineno, start, block

    def size(self) -> int:
        """Bytes in the file right now (0 while it does not exist)."""
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def close(self) -> None:
        if self._f is not None:
            self._f.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
