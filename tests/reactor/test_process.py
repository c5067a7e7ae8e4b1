"""reactor.spawnProcess and ProcessProtocol, with real child processes."""

from __future__ import annotations

import io
import os
import signal
import sys
from typing import Any

import pytest

from reactor import Reactor, basic, defer, error, process, protocol

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


class Recorder(protocol.ProcessProtocol):
    """Records every event; ``ended`` fires once processEnded came, with
    ``reason`` its argument."""

    def __init__(self, to_write: bytes = b"", close_stdin: bool = True) -> None:
        self.to_write = to_write
        self.close_stdin = close_stdin
        self.events: list[str] = []
        self.out = bytearray()
        self.err = bytearray()
        self.fds: dict[int, bytearray] = {}
        self.ended = defer.Deferred()

    def connectionMade(self) -> None:
        self.events.append("made")
        if self.to_write:
            self.transport.write(self.to_write)
        if self.close_stdin:
            self.transport.closeStdin()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.fds.setdefault(childFD, bytearray()).extend(data)
        super().childDataReceived(childFD, data)

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def childConnectionLost(self, childFD: int) -> None:
        self.events.append(f"lost {childFD}")
        super().childConnectionLost(childFD)

    def inConnectionLost(self) -> None:
        self.events.append("in lost")

    def processExited(self, reason: Any) -> None:
        self.events.append("exited")
        self.exited_reason = reason

    def processEnded(self, reason: Any) -> None:
        self.events.append("ended")
        self.reason = reason
        self.ended.callback(None)


def end_of(run_until: Any, p: Recorder, timeout: float = 10) -> Any:
    """Run the loop until ``p``'s process ended; the processEnded reason."""
    run_until(p.ended, timeout)
    return p.reason


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def test_protocol_is_importable_from_protocol() -> None:
    assert protocol.ProcessProtocol is process.ProcessProtocol


def test_stdin_stdout_stderr_and_a_clean_exit(loop: Reactor, run_until: Any) -> None:
    p = Recorder(b"hello\n")
    code = "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('warn')"
    transport = loop.spawnProcess(p, PY, python(code), env=None)
    assert transport.pid > 0 and p.transport is transport
    reason = end_of(run_until, p)
    assert reason.check(error.ProcessDone) and reason.value.exitCode == 0
    assert bytes(p.out) == b"HELLO\n" and bytes(p.err) == b"warn"
    assert p.events[0] == "made" and p.events[-1] == "ended"
    assert sorted(e for e in p.events if e.startswith("lost")) == ["lost 0", "lost 1", "lost 2"]
    assert p.events.index("in lost") == p.events.index("lost 0") + 1
    assert p.exited_reason.check(error.ProcessDone)
    assert transport.pid is None and os.WIFEXITED(transport.status)
    with pytest.raises(error.ProcessExitedAlready):
        transport.signalProcess("TERM")


def test_exit_code_and_signal(loop: Reactor, run_until: Any) -> None:
    p = Recorder()
    loop.spawnProcess(p, PY, python("raise SystemExit(7)"), env=None)
    reason = end_of(run_until, p)
    assert reason.check(error.ProcessTerminated)
    assert (reason.value.exitCode, reason.value.signal) == (7, None)

    sleeper = Recorder(close_stdin=False)
    t = loop.spawnProcess(sleeper, PY, python("import time; time.sleep(60)"), env=None)
    t.signalProcess("KILL")
    reason = end_of(run_until, sleeper)
    assert (reason.value.exitCode, reason.value.signal) == (None, signal.SIGKILL)
    assert str(reason.value).endswith(f"process ended by signal {signal.SIGKILL}.")


def test_environment_default_empty_none_inherits(loop: Reactor, run_until: Any,
                                                 monkeypatch: Any) -> None:
    monkeypatch.setenv("LOOPSCOPE_TEST_VAR", "inherited")
    empty = Recorder()
    loop.spawnProcess(empty, "/usr/bin/env", ["env"])
    end_of(run_until, empty)
    assert bytes(empty.out) == b""
    inherited = Recorder()
    loop.spawnProcess(inherited, "env", ["env"], env=None)  # found on PATH
    end_of(run_until, inherited)
    assert b"LOOPSCOPE_TEST_VAR=inherited\n" in inherited.out
    given = Recorder()
    loop.spawnProcess(given, "/usr/bin/env", ["env"], env={"ONLY": "this"})
    end_of(run_until, given)
    assert bytes(given.out) == b"ONLY=this\n"


def test_working_directory_and_exec_failures(loop: Reactor, run_until: Any,
                                             tmp_path: Any) -> None:
    p = Recorder()
    loop.spawnProcess(p, PY, python("import os; print(os.getcwd())"), env=None,
                      path=str(tmp_path))
    end_of(run_until, p)
    assert bytes(p.out).strip() == str(tmp_path).encode()
    # argv[0] is the caller's, not the executable's path.
    named = Recorder()
    loop.spawnProcess(named, PY, ["custom-name", "-c", "import sys; print(sys.argv[0])"],
                      env=None, path=str(tmp_path))
    end_of(run_until, named)
    assert bytes(named.out).strip() == b"-c"  # python's own argv[0] for -c
    with pytest.raises(FileNotFoundError):
        loop.spawnProcess(Recorder(), "/no/such/program", ["x"])
    # With a working directory the failure is the child's, as on Twisted's fork path.
    failed = Recorder()
    loop.spawnProcess(failed, "/no/such/program", ["x"], path=str(tmp_path))
    reason = end_of(run_until, failed)
    assert reason.value.exitCode == 1 and b"FileNotFoundError" in failed.err


def test_extra_child_fds_and_inherited_descriptors(loop: Reactor, run_until: Any,
                                                   tmp_path: Any) -> None:
    target = tmp_path / "out.txt"
    with open(target, "wb") as f:
        p = Recorder()
        code = ("import os; os.write(3, b'on three'); os.write(1, b'to the file');"
                "print(sorted(int(n) for n in os.listdir('/proc/self/fd') if int(n) < 10), "
                "file=open(4, 'w'))")
        loop.spawnProcess(p, PY, python(code), env=None,
                          childFDs={0: "w", 1: f.fileno(), 2: "r", 3: "r", 4: "r"})
        reason = end_of(run_until, p)
    assert reason.check(error.ProcessDone), bytes(p.err)
    assert bytes(p.fds[3]) == b"on three"
    assert target.read_bytes() == b"to the file"
    # The child had exactly the descriptors asked for (and listdir's own, 5).
    assert bytes(p.fds[4]).strip() == b"[0, 1, 2, 3, 4, 5]"


def test_unlisted_child_fds_are_closed(loop: Reactor, run_until: Any) -> None:
    p = Recorder(close_stdin=False)
    code = ("import os\nfor fd in (0, 2):\n    try: os.fstat(fd)\n"
            "    except OSError: os.write(1, b'%d closed ' % fd)")
    loop.spawnProcess(p, PY, python(code), env=None, childFDs={1: "r"})
    end_of(run_until, p)
    assert bytes(p.out) == b"0 closed 2 closed "
    assert p.events.count("lost 1") == 1 and "lost 0" not in p.events


def test_the_child_closing_stdin_is_seen_without_writing(loop: Reactor, run_until: Any) -> None:
    p = Recorder(close_stdin=False)
    loop.spawnProcess(p, PY, python("import os, time; os.close(0); time.sleep(0.5)"), env=None)
    end_of(run_until, p)
    assert p.events.index("in lost") < p.events.index("exited")


def test_pty(loop: Reactor, run_until: Any) -> None:
    p = Recorder(b"typed\n", close_stdin=False)
    code = ("import os, sys; os.open('/dev/tty', os.O_RDWR); "
            "print(os.isatty(0), os.isatty(1), os.isatty(2), repr(sys.stdin.readline()))")
    t = loop.spawnProcess(p, PY, python(code), env=None, usePTY=True)
    t.closeStdin()  # nothing for a pty, as in Twisted
    reason = end_of(run_until, p)
    assert reason.check(error.ProcessDone), bytes(p.out)
    assert b"True True True 'typed\\n'" in p.out  # /dev/tty opened: it is the controlling tty
    assert not any(e.startswith("lost") for e in p.events)


def test_file_sender_feeds_stdin_through_backpressure(loop: Reactor, run_until: Any) -> None:
    content = os.urandom(1 << 20)  # far more than a pipe holds

    class Cat(Recorder):
        def connectionMade(self) -> None:
            d = basic.FileSender().beginFileTransfer(io.BytesIO(content), self.transport)
            d.addCallback(lambda _: self.transport.closeStdin())

    p = Cat()
    loop.spawnProcess(p, "cat", ["cat"], env=None)
    end_of(run_until, p, timeout=30)
    assert bytes(p.out) == content


def test_lose_connection_closes_every_pipe(loop: Reactor, run_until: Any) -> None:
    p = Recorder(close_stdin=False)
    t = loop.spawnProcess(p, PY, python("import sys; sys.stdin.read()"), env=None)
    t.loseConnection()
    reason = end_of(run_until, p)
    assert reason.check(error.ProcessDone) and bytes(p.out) == b""
    assert sorted(e for e in p.events if e.startswith("lost")) == ["lost 0", "lost 1", "lost 2"]


def test_the_sigchld_fallback_reaps_through_the_loop(loop: Reactor, run_until: Any,
                                                     monkeypatch: Any) -> None:
    previous = signal.getsignal(signal.SIGCHLD)
    monkeypatch.setattr(process, "USE_PIDFD", False)
    monkeypatch.setattr(process, "_sigchld_installed", False)
    try:
        many = [Recorder() for _ in range(5)]
        for i, p in enumerate(many):
            loop.spawnProcess(p, PY, python(f"raise SystemExit({i})"), env=None)
        assert signal.getsignal(signal.SIGCHLD) is process._on_sigchld
        reasons = [end_of(run_until, p) for p in many]
        assert [r.value.exitCode for r in reasons] == [0, 1, 2, 3, 4]
        assert process._waiting == {}
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_bad_child_fds_are_refused(loop: Reactor) -> None:
    with pytest.raises(ValueError, match="childFDs"):
        loop.spawnProcess(Recorder(), PY, [PY], childFDs={0: "x"})
