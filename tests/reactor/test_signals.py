"""SIGINT/SIGTERM stop the reactor cleanly; handlers only from the main thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from reactor import Reactor

from terminal_signals import with_sigint

SCRIPT = """
import sys
from reactor import reactor
reactor.callWhenRunning(print, "ready", flush=True)
reactor.addSystemEventTrigger("before", "shutdown", print, "shutdown trigger", flush=True)
reactor.run(installSignalHandlers={install})
print("run returned", flush=True)
"""


def start_child(install: bool, sigint_ignored: bool = False) -> subprocess.Popen:
    """The script above in a child whose SIGINT starts at its default (as from a terminal)
    or, with ``sigint_ignored``, ignored (as in a shell's background job)."""
    child = subprocess.Popen(with_sigint([sys.executable, "-c", SCRIPT.format(install=install)],
                                         ignored=sigint_ignored),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.mark.timeout(30)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_reactor_cleanly(signum: int) -> None:
    child = start_child(install=True)
    child.send_signal(signum)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 0, err
    assert out.splitlines() == ["shutdown trigger", "run returned"]
    assert "Traceback" not in err


@pytest.mark.timeout(30)
def test_an_ignored_sigint_stays_ignored() -> None:
    """As in Twisted: a program started with SIGINT ignored (a shell's background job) is not
    stopped by it; SIGTERM still stops it cleanly."""
    child = start_child(install=True, sigint_ignored=True)
    child.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        child.communicate(timeout=1)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 0, err
    assert out.splitlines() == ["shutdown trigger", "run returned"]


@pytest.mark.timeout(30)
def test_without_signal_handlers_sigterm_kills_it() -> None:
    child = start_child(install=False)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=20)
    assert child.returncode == -signal.SIGTERM
    assert "shutdown trigger" not in out


def test_handlers_are_installed_while_running_and_restored_after(loop: Reactor) -> None:
    before = signal.getsignal(signal.SIGTERM)
    during = []
    loop.callWhenRunning(lambda: during.append(signal.getsignal(signal.SIGTERM)))
    loop.callWhenRunning(loop.stop)
    loop.run()
    assert during and during[0] is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_install_flag_false_leaves_handlers_alone(loop: Reactor) -> None:
    before = signal.getsignal(signal.SIGTERM)
    during = []
    loop.callWhenRunning(lambda: during.append(signal.getsignal(signal.SIGTERM)))
    loop.callWhenRunning(loop.stop)
    loop.run(installSignalHandlers=False)
    assert during == [before]


def test_a_users_own_sigint_handler_is_kept(loop: Reactor) -> None:
    def mine(signum, frame) -> None:
        pass

    old = signal.signal(signal.SIGINT, mine)
    try:
        during = []
        loop.callWhenRunning(lambda: during.append(signal.getsignal(signal.SIGINT)))
        loop.callWhenRunning(loop.stop)
        loop.run()
        assert during == [mine]
    finally:
        signal.signal(signal.SIGINT, old)


def test_reactor_in_another_thread_installs_no_handlers(loop: Reactor) -> None:
    before = signal.getsignal(signal.SIGTERM)
    during = []
    errors = []
    loop.callWhenRunning(lambda: during.append(signal.getsignal(signal.SIGTERM)))
    loop.callWhenRunning(loop.stop)

    def runner() -> None:
        try:
            loop.run(installSignalHandlers=True)
        except Exception as exc:  # signal.signal outside the main thread raises
            errors.append(exc)

    t = threading.Thread(target=runner)
    t.start()
    t.join(10)
    assert errors == [] and during == [before]
