"""protocol.ClientCreator, protocol.connectionDone, and listenUNIX's mode and
wantPID / connectUNIX's checkPID, over real sockets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from typing import Any

import pytest
from collecting import Collect

from reactor import Reactor, error, protocol
from reactor.defer import CancelledError
from reactor.lockfile import FilesystemLock, isLocked

pytestmark = pytest.mark.timeout(30)


class Greeter(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"hello")
        self.transport.loseConnection()


def test_connection_done_is_a_clean_failure_and_the_default_reason() -> None:
    assert protocol.connectionDone.check(error.ConnectionDone)
    import inspect

    default = inspect.signature(protocol.Protocol.connectionLost).parameters["reason"].default
    assert default is protocol.connectionDone
    protocol.Protocol().connectionLost()  # callable without a reason, as in Twisted


def test_client_creator_tcp_gives_the_connected_protocol(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, protocol.Factory.forProtocol(Greeter), interface="127.0.0.1")
    creator = protocol.ClientCreator(loop, Collect, tag="t")
    p = run_until(creator.connectTCP("127.0.0.1", port.getHost().port))
    assert isinstance(p, Collect) and p.tag == "t" and p.transport is not None
    assert run_until(p.done) == b"hello"
    assert p.reason.check(error.ConnectionDone)
    port.stopListening()


def test_client_creator_failure_and_cancel(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, protocol.Factory.forProtocol(Greeter), interface="127.0.0.1")
    number = port.getHost().port
    port.stopListening()
    with pytest.raises(error.ConnectionRefusedError):
        run_until(protocol.ClientCreator(loop, Collect).connectTCP("127.0.0.1", number))
    # Cancelled before the loop ran: the attempt is aborted.
    d = protocol.ClientCreator(loop, Collect).connectTCP("127.0.0.1", number)
    d.cancel()
    with pytest.raises(CancelledError):
        run_until(d)


def test_client_creator_unix(loop: Reactor, run_until: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "s")
    port = loop.listenUNIX(path, protocol.Factory.forProtocol(Greeter))
    p = run_until(protocol.ClientCreator(loop, Collect).connectUNIX(path))
    assert run_until(p.done) == b"hello"
    port.stopListening()


def test_listen_unix_mode(loop: Reactor, tmp_path: Any) -> None:
    path = str(tmp_path / "m")
    port = loop.listenUNIX(path, protocol.Factory.forProtocol(Greeter), mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    port.stopListening()
    assert not os.path.exists(path)


def test_want_pid_locks_refuses_a_second_server_and_unlocks(loop: Reactor, tmp_path: Any) -> None:
    path = str(tmp_path / "p")
    factory = protocol.Factory.forProtocol(Greeter)
    port = loop.listenUNIX(path, factory, wantPID=True)
    assert os.readlink(path + ".lock") == str(os.getpid())
    assert isLocked(path + ".lock")
    with pytest.raises(error.CannotListenError):
        loop.listenUNIX(path, factory, wantPID=True)
    port.stopListening()
    assert not os.path.lexists(path + ".lock") and not os.path.exists(path)


def test_want_pid_takes_over_from_a_dead_owner(loop: Reactor, run_until: Any,
                                               tmp_path: Any) -> None:
    path = str(tmp_path / "d")
    # A process that listened with the lock and died without cleaning up.
    code = (f"import os, socket; s = socket.socket(socket.AF_UNIX); s.bind({path!r}); "
            f"os.symlink(str(os.getpid()), {path + '.lock'!r}); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert os.path.exists(path) and os.path.lexists(path + ".lock")
    port = loop.listenUNIX(path, protocol.Factory.forProtocol(Greeter), wantPID=True)
    p = run_until(protocol.ClientCreator(loop, Collect).connectUNIX(path, checkPID=True))
    assert run_until(p.done) == b"hello"
    port.stopListening()


def test_check_pid_fails_without_a_live_lock(loop: Reactor, run_until: Any,
                                             tmp_path: Any) -> None:
    path = str(tmp_path / "n")
    port = loop.listenUNIX(path, protocol.Factory.forProtocol(Greeter))  # no wantPID
    with pytest.raises(error.BadFileError):
        run_until(protocol.ClientCreator(loop, Collect).connectUNIX(path, checkPID=True))
    port.stopListening()


def test_lock_refuses_others_and_matches_twisted(tmp_path: Any) -> None:
    from twisted.python import lockfile as tlockfile

    name = str(tmp_path / "lock")
    ours = FilesystemLock(name)
    assert ours.lock() and ours.clean
    assert not FilesystemLock(name).lock()
    assert tlockfile.isLocked(name)            # Twisted sees our lock
    ours.unlock()
    theirs = tlockfile.FilesystemLock(name)
    assert theirs.lock()
    assert isLocked(name)                      # and we see Twisted's
    theirs.unlock()
    os.symlink("1", name)                      # PID 1: alive, and not us
    assert isLocked(name)
    with pytest.raises(ValueError):
        FilesystemLock(name).unlock()
