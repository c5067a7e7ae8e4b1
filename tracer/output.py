"""The trace file as the writer thread sees it: whole lines, never raising, never astray.

Writing a trace must not harm the application nor lose data silently, whatever happens to the
file:

- **A descriptor is checked by identity before each write.**  A daemon closes every
  descriptor it did not open (``closerange``) and opens its own files, which get the same
  numbers: a number is not a file.  Each descriptor loopscope writes is remembered by its
  ``(st_dev, st_ino)`` and checked with ``fstat`` before use; when it is no longer the same
  file, the trace is reopened by its path (if that still is the same file) or writing stops,
  and the number is left alone (it is the application's now).  The descriptors are moved to
  high numbers (:data:`HIGH_FD`) too, so that an application opening files after a
  ``closerange`` does not get them back between a check and a write.
- **Lines are written whole.**  A short write is continued; a failed one (full disk, EIO)
  keeps the rest of the line it cut, which is written first once writing works again, so no
  line is ever merged with another or cut; the lines that could not be written are counted
  (:attr:`TraceOutput.lost`) for a ``drop`` event once writing works again.  Nothing raises.
- **Waiting is bounded.**  A FIFO is written without blocking: while its reader does not keep
  up the writer waits, until :attr:`TraceOutput.deadline` when one is set (at exit), and
  what is left then is counted as lost.

Events are drained from the buffer into a private in-memory file first (``drain`` writes to
a descriptor, with the GIL released), and copied from there to the trace by the kernel
(``sendfile``), in whole lines.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import resource
import select
import stat
import sys
import time
from collections.abc import Callable

from tracer.files import open_trace_output

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

#: Descriptors loopscope keeps are moved at or above this number (or near the descriptor
#: limit when it is lower): an application that closes everything and opens its own files
#: gets the low numbers first, so it would need this many files open to reuse one of ours.
HIGH_FD = 1000
#: A staged batch up to this size keeps the staging file's pages for the next one: giving
#: them back and faulting fresh ones for every batch costs the writer time.  A bigger batch
#: gives them back.
KEEP_STAGED = 8 << 20
#: Longest single wait for a FIFO's reader, so that a deadline set meanwhile is seen.
WAIT_STEP = 0.1
#: Seconds exit waits, by default, for the trace to be written (a FIFO's reader may be slow
#: or gone); what is not written by then is counted as dropped.  Long enough for a healthy
#: reader to take the last 100 ms of events, short enough that a stuck one does not hold
#: the exit for long.
DRAIN_TIMEOUT = 2.0
#: Environment variable: seconds exit waits for the trace to be written.
DRAIN_TIMEOUT_ENV = "LOOPSCOPE_DRAIN_TIMEOUT"


def _high_fd_floor() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > HIGH_FD + 64:
        return HIGH_FD
    return max(soft - 32, 3)


def drain_timeout_from_env() -> float:
    """Seconds exit waits for the trace to be written: ``$LOOPSCOPE_DRAIN_TIMEOUT``, else
    :data:`DRAIN_TIMEOUT`.  Raises ValueError (one sentence) when it is not a number
    of seconds."""
    text = os.environ.get(DRAIN_TIMEOUT_ENV, "").strip()
    if not text:
        return DRAIN_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:
        raise ValueError(f"{DRAIN_TIMEOUT_ENV} must be a number of seconds, not {text!r}")
    return value


def warn(message: str) -> None:
    """One line on stderr, in the CLI's style (the writer thread's only way to speak)."""
    try:
        print(f"loopscope: warning: {message}", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - a closed or broken stderr must not stop the writer
        pass


class Owned:
    """A descriptor this process opened, and the file it was opened on."""

    def __init__(self, fd: int) -> None:
        try:
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _high_fd_floor())
        except OSError:
            high = fd  # no room up there: keep the number it has
        else:
            os.close(fd)
        self.fd = high
        st = os.fstat(high)
        self.identity = (st.st_dev, st.st_ino)
        self.mode = st.st_mode

    def ours(self) -> bool:
        """Whether ``fd`` still is the file it was opened on (not closed, not replaced)."""
        try:
            st = os.fstat(self.fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.identity

    def close(self) -> None:
        """Close it if it still is ours; a number the application took over is left alone."""
        if self.ours():
            os.close(self.fd)
        self.fd = -1



def wake_pipe() -> tuple[Owned, Owned]:
    """A pipe a tracer thread waits on and another thread writes to, to wake it (its read and
    write ends).  Both ends are non-blocking: neither emptying it nor waking through it ever
    waits, and a full pipe means a wake is pending already."""
    read_end, write_end = os.pipe()
    pipe = (Owned(read_end), Owned(write_end))
    for end in pipe:
        os.set_blocking(end.fd, False)
    return pipe
class TraceOutput:
    """The trace file's descriptor and the staging file batches are drained into."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = Owned(open_trace_output(path))
        self._stage = self._new_stage()
        #: Lines that could not be written (counted as dropped in the trace).
        self.lost = 0
        #: Why writing fails right now (the OS's words), None while it works.
        self.error: str | None = None
        #: The first reason anything was lost (for the run's last line).
        self.first_problem: str | None = None
        #: Why writing stopped for good (the file is gone from under the writer), else None.
        self.stopped: str | None = None
        #: ``time.monotonic()`` after which a FIFO's slow reader is no longer waited for.
        self.deadline: float | None = None
        self._sendfile = True  # False once the file refused sendfile (then: pread and write)
        self._partial = b""  # the rest of a line a failed write cut, written first
        self._cut = 0        # bytes of that line already in the file

    @staticmethod
    def _new_stage() -> Owned:
        return Owned(os.memfd_create("loopscope-batch", os.MFD_CLOEXEC))

    # -- the checks -------------------------------------------------------------------
    def _usable(self) -> bool:
        """Whether the trace descriptor may be written: still the file it was opened on, or
        reopened by path onto that same file.  Otherwise writing stops for good."""
        if self.stopped is not None:
            return False
        if self._file.ours():
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            reopened = Owned(fd)
            if reopened.ours() and reopened.identity == self._file.identity:
                if stat.S_ISCHR(reopened.mode):
                    os.set_blocking(reopened.fd, True)
                if stat.S_ISREG(reopened.mode):  # appended to (not O_APPEND: sendfile refuses it)
                    os.lseek(reopened.fd, 0, os.SEEK_END)
                self._file = reopened  # the old number is the application's now: not closed
                warn(f"the application closed the trace's descriptor; {self.path} was reopened")
                return True
            reopened.close()
        self.stopped = ("the application closed or replaced the trace's descriptor and "
                        f"{self.path} could not be reopened")
        self.note(self.stopped)
        warn(f"{self.stopped}; tracing goes on without writing")
        return False

    def note(self, text: str) -> None:
        """Remember ``text`` as the first reason something was lost (if it is)."""
        if self.first_problem is None:
            self.first_problem = text

    # -- writing ------------------------------------------------------------------------
    def _wait_writable(self) -> bool:
        """Wait for a full FIFO to take more, until the deadline; False when it passed."""
        while True:
            left = WAIT_STEP if self.deadline is None else self.deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if select.select([], [self._file.fd], [], min(left, WAIT_STEP))[1]:
                    return True
            except (OSError, ValueError):
                return True  # the write that follows says what is wrong

    def _put(self, send: Callable[[int, int], int], total: int) -> int:
        """Write ``total`` bytes, ``send(fd, done)`` writing some of them from byte ``done``
        on; returns how many the file took before writing failed (``total`` when it did not)."""
        done = 0
        while done < total:
            if not self._usable():
                break
            try:
                done += send(self._file.fd, done)
            except BlockingIOError:
                if not self._wait_writable():
                    self._failing("its reader did not keep up until the drain timeout")
                    break
            except OSError as e:
                self._failing(e.strerror or str(e))
                break
        else:
            self.error = None
        return done

    def _failing(self, reason: str) -> None:
        if self.error is None:
            warn(f"cannot write the trace {self.path}: {reason}; what cannot be written is "
                 f"counted as lost")
        self.error = reason
        self.note(reason)

    def _finish_cut_line(self) -> bool:
        """Write the rest of the line a failed write cut, if any; False while it cannot be."""
        if not self._partial:
            return True
        rest = memoryview(self._partial)
        done = self._put(lambda fd, start: os.write(fd, rest[start:]), len(rest))
        self._partial, self._cut = self._partial[done:], self._cut + done
        if self._partial:
            return False
        self._cut = 0
        self.lost -= 1  # counted as lost when it was cut: it is whole now
        return True

    def _whole_lines(self, done: int, total: int, lines: int,
                     read: Callable[[int, int], bytes]) -> int:
        """After ``done`` of ``total`` bytes (``lines`` lines) reached the file: how many of
        the lines are whole there.  The others are counted as lost, and the rest of a line
        that was cut is kept to be written first next time.  ``read(start, n)`` gives bytes
        of what was written (read only when writing failed)."""
        if done == total:
            return lines
        written = read(0, done)
        line_start = written.rfind(b"\n") + 1
        if done > line_start:
            rest = read(done, total - done)
            self._partial, self._cut = rest[:rest.index(b"\n") + 1], done - line_start
        whole = written.count(b"\n")
        self.lost += lines - whole
        return whole

    def write(self, data: bytes, lines: int) -> int:
        """Write ``data``, ``lines`` whole lines; returns how many of them are now in the file
        (the others are added to :attr:`lost`).  Never raises."""
        finished = bool(self._partial)
        if not self._finish_cut_line():
            self.lost += lines
            return 0
        view = memoryview(data)
        done = self._put(lambda fd, start: os.write(fd, view[start:]), len(view))
        return finished + self._whole_lines(done, len(view), lines,
                                            lambda start, n: bytes(view[start:start + n]))

    def drain(self, events: Any) -> tuple[int, int]:
        """Drain ``events`` (a tracer Buffer) into the trace; returns ``(lines written,
        call rows drained)``.  Lines that could not be written are counted in :attr:`lost`."""
        if not self._stage.ours():
            self._stage = self._new_stage()  # the old number is the application's now
        pending = events.pending
        stage = self._stage.fd
        try:
            lines, calls = events.drain(stage)
        except OSError as e:
            self.lost += pending  # the batch is gone (the buffer stays usable)
            self.note(f"a batch could not be staged ({e.strerror})")
            lines, calls = 0, 0
        size = os.lseek(stage, 0, os.SEEK_CUR)  # the batch's length (older bytes may follow)
        os.lseek(stage, 0, os.SEEK_SET)
        written = 0
        if lines:
            finished = bool(self._partial)
            if not self._finish_cut_line():
                self.lost += lines
            else:
                done = self._put(lambda fd, start: self._send(fd, stage, start, size - start),
                                 size)
                written = finished + self._whole_lines(
                    done, size, lines, lambda start, n: os.pread(stage, n, start))
        if size > KEEP_STAGED:
            os.ftruncate(stage, 0)
        return written, calls

    def _send(self, fd: int, stage: int, start: int, n: int) -> int:
        """Copy ``n`` staged bytes from ``start`` to ``fd`` inside the kernel (sendfile), or
        through a buffer where the file does not take sendfile."""
        if self._sendfile:
            try:
                return os.sendfile(fd, stage, start, n)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                self._sendfile = False
        return os.write(fd, os.pread(stage, min(n, 1 << 20), start))

    # -- the end -------------------------------------------------------------------------
    def uncut(self) -> None:
        """Take back the start of a cut line from a regular file (at the end, when it can no
        longer be finished), so the file ends with a whole line and an ``end`` line fits."""
        if not self._partial or not stat.S_ISREG(self._file.mode) or not self._usable():
            return
        try:
            end = os.lseek(self._file.fd, 0, os.SEEK_END)
            os.ftruncate(self._file.fd, end - self._cut)
            os.lseek(self._file.fd, 0, os.SEEK_END)
        except OSError:
            return
        self._partial, self._cut = b"", 0

    def close(self) -> None:
        """Close the descriptors that are still ours."""
        self._file.close()
        self._stage.close()

    def abandon(self) -> None:
        """In a forked child: close this process's copies, write nothing (the parent does)."""
        self.stopped = "this is a forked child's copy of the parent's trace"
        self.close()

