"""Creating the files loopscope writes, without harming files it did not create.

A trace holds application data, and its path may sit in a directory other users can write
to (``/tmp``): a symbolic link planted there must not make loopscope overwrite, truncate or
change the mode of the file it points to.  So every file loopscope writes is created here:

- a trace is a new file, created with ``O_EXCL | O_NOFOLLOW`` and mode 0600; an existing
  path is refused with one sentence (:class:`OutputError`), except a FIFO or a character
  device (a pipe to another program, ``-o /dev/null``), which are written to as they
  are: writing to them destroys nothing;
- an export is written to a new temporary file (a random name, created the same way, in the
  target's directory) and renamed over the target once complete, so a link planted at the
  target or at a temporary name is replaced or refused, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import IO, TypeVar

    T = TypeVar("T")

#: Mode of every file loopscope creates: traces and exports may hold application data.
PRIVATE = 0o600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputError(Exception):
    """A one-sentence reason why loopscope will not write to a path."""


def create_private(path: str) -> int:
    """A new file at ``path``, mode 0600 whatever the umask; never follows a link there.

    Raises FileExistsError when anything (a file, a link, a dangling link) is at ``path``.
    """
    fd = os.open(path, _CREATE, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)  # the umask may have removed bits from PRIVATE
    except BaseException:
        os.close(fd)
        raise
    return fd


def describe_mode(mode: int) -> str:
    """What a file of ``mode`` (``st_mode``) is, for messages: "a FIFO", "a directory"..."""
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISREG, "a file"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "a special file"


def _open_special(path: str) -> int | None:
    """A descriptor to write to the FIFO or character device at ``path`` as it is, None when
    ``path`` is anything else (OutputError when it cannot be opened as checked)."""
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        return None
    if not (stat.S_ISFIFO(before.st_mode) or stat.S_ISCHR(before.st_mode)):
        return None
    try:
        # O_NONBLOCK: opening a FIFO nobody reads fails at once (ENXIO) instead of waiting.
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise OutputError(f"{path} is a FIFO that no process is reading") from None
        raise
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)  # replaced between the two looks: not what was checked
        raise OutputError(f"{path} changed while it was being opened")
    if stat.S_ISCHR(after.st_mode):
        os.set_blocking(fd, True)  # a device (/dev/null, a terminal) is written as it is
    return fd


def open_trace_output(path: str) -> int:
    """A descriptor to write a new trace to ``path``: a file created here, or an existing FIFO
    (left non-blocking: tracer.output waits for its reader itself) or character device.
    Raises OutputError for anything else that exists (OSError when the OS refuses, e.g. a
    missing directory)."""
    try:
        return create_private(path)
    except FileExistsError:
        pass
    fd = _open_special(path)
    if fd is None:
        raise OutputError(f"{path} exists and is {describe_mode(os.lstat(path).st_mode)}: loopscope "
                          f"writes a trace only into a new file (remove it or choose another "
                          f"path)")
    return fd


def write_replacing(path: str, write: Callable[[IO[bytes]], T]) -> T:
    """Run ``write`` into a new private temporary file beside ``path``, then rename it to
    ``path`` (replacing what is there, a link included, never following it); returns what
    ``write`` returned.  On any failure the temporary file is removed and ``path`` is
    untouched.  A FIFO or a character device at ``path`` (``-o /dev/stdout`` resolved, a
    pipe) is written to directly instead."""
    special = _open_special(path)
    if special is not None:
        os.set_blocking(special, True)
        with os.fdopen(special, "wb") as out:
            return write(out)
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(8).hex()}.tmp")
    fd = create_private(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return result
