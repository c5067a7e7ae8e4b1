"""A lock between processes that survives its owner's crash, as Twisted's
``twisted.python.lockfile``: ``listenUNIX(wantPID=True)`` takes one beside
its socket and ``connectUNIX(checkPID=True)`` checks it.

The lock is a symbolic link whose target is the owner's PID.  Creating a
symlink is atomic and fails if it exists, so two processes cannot both take
it; a lock whose PID no longer runs is stale and is taken over (``clean`` is
then False, telling the new owner that the old one did not clean up).
"""

from __future__ import annotations

import errno
import os


class FilesystemLock:
    """The lock at path ``name``; ``lock()`` takes it, ``unlock()`` frees it."""

    clean: bool | None = None
    locked = False

    def __init__(self, name: str | bytes) -> None:
        self.name = name

    def lock(self) -> bool:
        """Take the lock: True if this process now holds it, False if a live
        process does (a PID we may not signal counts as live)."""
        clean = True
        while True:
            try:
                os.symlink(str(os.getpid()), self.name)
            except FileExistsError:
                try:
                    owner = int(os.readlink(os.fsdecode(self.name)))
                except FileNotFoundError:
                    continue  # freed meanwhile: try again
                except ValueError:
                    return False  # not a lock of ours: leave it alone
                if _alive(owner):
                    return False
                try:
                    os.unlink(self.name)
                except FileNotFoundError:
                    pass  # another process removed the stale lock first
                clean = False
                continue
            self.locked = True
            self.clean = clean
            return True

    def unlock(self) -> None:
        """Free the lock; ValueError if this process does not hold it."""
        owner = os.readlink(os.fsdecode(self.name))
        if int(owner) != os.getpid():
            raise ValueError(f"Lock {self.name!r} not owned by this process")
        os.unlink(self.name)
        self.locked = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def isLocked(name: str | bytes) -> bool:
    """Whether some live process holds the lock at ``name``."""
    probe = FilesystemLock(name)
    if probe.lock():
        probe.unlock()
        return False
    return True
