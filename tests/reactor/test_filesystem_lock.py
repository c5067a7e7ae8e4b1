"""defer.DeferredFilesystemLock: waiting, from the loop, for a lock another
process holds (a real child process holds it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reactor import Reactor, defer, lockfile

HOLD = """
import os, sys, time
os.symlink(str(os.getpid()), sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
os.unlink(sys.argv[1])
print("freed", flush=True)
time.sleep(30)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Any:
    """A child process holding the lock at tmp_path/lock until told to free it."""
    path = tmp_path / "lock"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    yield path, child
    child.kill()
    child.wait()


def polling_lock(path: Path, loop: Reactor) -> defer.DeferredFilesystemLock:
    """The lock at ``path``, tried every 50 ms on ``loop`` (not every second)."""
    lock = defer.DeferredFilesystemLock(str(path), scheduler=loop)
    lock._interval = 0.05
    return lock


def test_waits_for_another_process_then_holds_the_lock(loop: Reactor, run_until: Any,
                                                       holder: Any) -> None:
    path, child = holder
    lock = polling_lock(path, loop)
    d = lock.deferUntilLocked(timeout=10)
    assert not d.called and lockfile.isLocked(str(path))
    again = lock.deferUntilLocked()
    with pytest.raises(defer.AlreadyTryingToLockError):
        run_until(again)
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline() == "freed\n"
    assert run_until(d) is None
    assert lock.locked and lock._tryLockCall is None and lock._timeoutCall is None
    lock.unlock()


def test_times_out_or_is_cancelled_while_the_other_holds_it(loop: Reactor, run_until: Any,
                                                            holder: Any) -> None:
    path, _ = holder
    lock = polling_lock(path, loop)
    with pytest.raises(defer.TimeoutError):
        run_until(lock.deferUntilLocked(timeout=0.2))
    d = lock.deferUntilLocked()
    d.cancel()
    with pytest.raises(defer.CancelledError):
        run_until(d)
    assert lock._tryLockCall is None and not lock.locked


def test_the_default_scheduler_is_the_default_reactor(tmp_path: Path) -> None:
    from reactor import reactor

    assert defer.DeferredFilesystemLock(str(tmp_path / "lock"))._scheduler is reactor
