"""Child processes: ``reactor.spawnProcess`` and ``ProcessProtocol``, as in
Twisted (``twisted.internet.process``, ``protocol.ProcessProtocol``).

The child is started with ``os.posix_spawnp`` (no fork of this process, so
it is safe with threads running), its descriptors laid out as ``childFDs``
says: ``{0: "w", 1: "r", 2: "r"}`` by default, where ``"w"`` is a pipe the
parent writes (the child's stdin), ``"r"`` a pipe the parent reads, and an
int a descriptor of the parent the child gets as is; every other inheritable
descriptor is closed in the child.  ``usePTY=True`` gives the child a
pseudo-terminal as its controlling terminal instead (fds 0-2), read and
written through one master descriptor.

Exits are seen through a pidfd (Linux 5.3+): a descriptor that turns
readable when the child exits, polled with the others, so the exit is
handled by the loop like any I/O, with no signal handler and no race.
Without pidfds a SIGCHLD handler (installed from the main thread on first
use) hands a reap over to the loop with ``callFromThread``, which wakes it.

Events reach the protocol in Twisted's order: ``connectionMade``; data as
``childDataReceived`` (``outReceived`` / ``errReceived``); each pipe's end
as ``childConnectionLost`` (``inConnectionLost``...); ``processExited`` when
the child is reaped; ``processEnded`` once it is reaped and every pipe is
closed, with ProcessDone (exit code 0) or ProcessTerminated.

Each pipe is a descriptor the reactor polls and reports itself to the probe
as a connection (role ``"process"``, host the child's side such as
``stdout``, peer ``pid N executable``), so a trace shows pipes beside
sockets; the protocol methods run as ``"read"``/``"write"`` calls.

Differences kept on purpose: with ``path`` (a working directory other than
the current one) the child is started through a small Python trampoline
that changes directory then execs, since ``posix_spawn`` cannot change
directory before Python 3.13's ``POSIX_SPAWN_CHDIR``; a failure to exec is
then reported as Twisted's fork path reports it (a traceback on the
child's stderr and exit code 1) rather than raised.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from reactor import _instrument, error, log, tcp
from reactor.failure import Failure
from reactor.protocol import BaseProtocol

_SIGNAL_NAMES = ("HUP", "STOP", "INT", "KILL", "TERM")

USE_PIDFD = hasattr(os, "pidfd_open")
"""Watch exits through pidfds (else through SIGCHLD); tests turn it off to
exercise the fallback on a machine that has them."""

_CHDIR_THEN_EXEC = "import os, sys; os.chdir(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[3:])"


class ProcessProtocol(BaseProtocol):
    """What happens to a child process, by method; override the ones you need."""

    transport: Any = None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """Data from the child's ``childFD``: stdout and stderr go to
        outReceived / errReceived."""
        if childFD == 1:
            self.outReceived(data)
        elif childFD == 2:
            self.errReceived(data)

    def outReceived(self, data: bytes) -> None:
        """Data from the child's stdout."""

    def errReceived(self, data: bytes) -> None:
        """Data from the child's stderr."""

    def childConnectionLost(self, childFD: int) -> None:
        """The pipe to ``childFD`` closed: dispatched to in/out/errConnectionLost."""
        if childFD == 0:
            self.inConnectionLost()
        elif childFD == 1:
            self.outConnectionLost()
        elif childFD == 2:
            self.errConnectionLost()

    def inConnectionLost(self) -> None:
        """The child's stdin is closed (by us, or by the child)."""

    def outConnectionLost(self) -> None:
        """The child's stdout is closed."""

    def errConnectionLost(self) -> None:
        """The child's stderr is closed."""

    def processExited(self, reason: Failure) -> None:
        """The child exited (its pipes may still be open)."""

    def processEnded(self, reason: Failure) -> None:
        """The child exited and all its pipes are closed: the last event."""


@dataclass(frozen=True)
class ProcessAddress:
    """The child side of a process transport, named for traces and logs."""

    name: str


_STD_NAMES = {0: "stdin", 1: "stdout", 2: "stderr"}


def _exit_reason(status: int | None) -> BaseException:
    """ProcessDone for exit code 0, else ProcessTerminated (as Twisted)."""
    if status is None:  # reaped by someone else: we cannot know
        return error.ProcessTerminated()
    if os.WIFEXITED(status):
        code, sig = os.WEXITSTATUS(status), None
    else:
        code, sig = None, os.WTERMSIG(status)
    if code or sig:
        return error.ProcessTerminated(code, sig, status)
    return error.ProcessDone(status)


class _PipeSocket:
    """A pipe descriptor with the socket methods ``tcp.Connection`` uses, so
    the pipe gets the connection's buffering, producers and closing."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def send(self, data: bytes | bytearray | memoryview, /) -> int:
        return os.write(self.fd, data)

    def recv(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def shutdown(self, how: int) -> None:
        """Nothing: a pipe goes one way, and close() ends it."""

    def setsockopt(self, *args: Any) -> None:
        """Nothing: abortConnection's linger option has no pipe equivalent."""

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)


class _ChildEnd:
    """What a pipe's connection calls its protocol: the ProcessProtocol's
    handler for that pipe's data (the user's own method, so that a trace
    names it) and the process's bookkeeping when the pipe closes."""

    def __init__(self, process: Process, pipe: ProcessPipe) -> None:
        proto = process.proto
        child_fd = pipe.child_fd
        if type(proto).childDataReceived is ProcessProtocol.childDataReceived and child_fd in (1, 2):
            self.dataReceived = proto.outReceived if child_fd == 1 else proto.errReceived
        else:
            self.dataReceived = functools.partial(proto.childDataReceived, child_fd)
        self.connectionLost = functools.partial(process._pipe_lost, pipe)


class ProcessPipe(tcp.Connection):
    """The parent's end of one pipe of a child (or of its pty's master).

    A read end delivers what arrives to the protocol.  A write end is also
    watched for reading, which on a write end means the child closed its
    side (Twisted's "read hack"), so ``inConnectionLost`` comes even when
    nothing is written.  The pty's master both reads and writes.
    """

    def __init__(self, process: Process, child_fd: int, fd: int, reads: bool,
                 writes: bool) -> None:
        side = "pty" if process.usePTY else _STD_NAMES.get(child_fd, f"fd {child_fd}")
        super().__init__(process.reactor, _PipeSocket(fd), "process", ProcessAddress(side),
                         process.address)
        self.process = process
        self.child_fd = child_fd
        self.reads = reads
        self.writes = writes

    def __repr__(self) -> str:
        return f"<{self._host.name} of {self._peer.name}>"

    def logPrefix(self) -> str:
        return type(self.process.proto).__name__

    def start(self) -> None:
        """Report the pipe as a connection and start watching it."""
        self.protocol = _ChildEnd(self.process, self)
        probe = _instrument.probe
        if probe is not None:
            probe.connection_opened(self, self._fd, "process", self._host, self._peer)
        self.startReading()

    def doRead(self) -> None:
        """Data from the child, or (on a write end) the child closed its side."""
        if self.reads:
            super().doRead()
        else:
            self.connectionLost(Failure(error.ConnectionDone()))

    def loseConnection(self) -> None:
        """Close once written data is flushed; a read end closes on the next
        iteration (it never turns writable, so the flush path cannot)."""
        if self.writes:
            super().loseConnection()
        elif self.connected and not self.disconnecting:
            self.disconnecting = True
            self.stopReading()
            self.reactor.callLater(0, self.connectionLost, Failure(error.ConnectionDone()))


class ProcessExitWatcher:
    """The child's pidfd, readable once it has exited: the reap happens in
    the loop, as any other I/O."""

    _reports_own_calls = True
    _trace_id = None

    def __init__(self, process: Process, pid: int, pidfd: int) -> None:
        self.process = process
        self.pid = pid
        self.pidfd = pidfd

    def fileno(self) -> int:
        return self.pidfd

    def logPrefix(self) -> str:
        return type(self.process.proto).__name__

    def doRead(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, None  # reaped by someone else
        if pid:
            self.close()
            self.process._exited(status)

    def close(self) -> None:
        self.process.reactor.removeReader(self)
        os.close(self.pidfd)
        self.pidfd = -1

    def connectionLost(self, reason: Any) -> None:
        """The reactor shut down with the child still running: stop watching
        (the child is left alone, as Twisted leaves it)."""
        if self.pidfd >= 0:
            self.close()


# -- the SIGCHLD fallback (no pidfds) ---------------------------------------------------------

_waiting: dict[int, Process] = {}  # pid -> process, for the SIGCHLD fallback
_previous_sigchld: Any = None
_sigchld_installed = False


def _install_sigchld_handler() -> None:
    """On first use: reap from the loop whenever a child exits."""
    global _sigchld_installed, _previous_sigchld
    if _sigchld_installed:
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("spawnProcess without pidfd support (Linux 5.3+) must first be "
                           "called from the main thread, to install a SIGCHLD handler")
    _previous_sigchld = signal.signal(signal.SIGCHLD, _on_sigchld)
    _sigchld_installed = True


def _on_sigchld(signum: int, frame: Any) -> None:
    """Runs in the main thread between bytecodes: hand the reap to each loop."""
    for reactor in {p.reactor for p in list(_waiting.values())}:
        reactor.callFromThread(_reap_waiting, reactor)
    if callable(_previous_sigchld):
        _previous_sigchld(signum, frame)


def _reap_waiting(reactor: Any) -> None:
    """Reap whichever children of ``reactor`` have exited (signals coalesce:
    one SIGCHLD may stand for several exits)."""
    for pid, process in list(_waiting.items()):
        if process.reactor is not reactor:
            continue
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, None
        if done:
            del _waiting[pid]
            process._exited(status)


# -- the transport ----------------------------------------------------------------------------

class Process:
    """A running child: the transport of its ProcessProtocol.

    ``pid`` is its process id until it has been reaped (then None);
    ``status`` its raw wait status once it has (-1 before).
    """

    status = -1
    _watcher: ProcessExitWatcher | None = None

    def __init__(self, reactor: Any, proto: Any, executable: str, args: list, env: Any,
                 path: str | None, usePTY: bool, childFDs: dict | None) -> None:
        self.reactor = reactor
        self.proto = proto
        self.usePTY = bool(usePTY)
        self.pipes: dict[int, ProcessPipe] = {}
        self._lost_process = False
        self._pidfd_mode = USE_PIDFD
        if not self._pidfd_mode:
            _install_sigchld_handler()
        ends, actions, to_close = self._plan(childFDs)
        try:
            self.pid: int | None = self._spawn(executable, list(args), env, path, actions)
        except BaseException:
            for _, fd, _, _ in ends:
                os.close(fd)
            raise
        finally:
            for fd in to_close:
                os.close(fd)
        self.address = ProcessAddress(f"pid {self.pid} {executable}")
        self._watch_exit()
        for child_fd, fd, reads, writes in ends:
            pipe = self.pipes[child_fd] = ProcessPipe(self, child_fd, fd, reads, writes)
            pipe.start()
        if getattr(type(proto), "makeConnection", None) is BaseProtocol.makeConnection:
            # What the stock makeConnection does, so a trace names connectionMade.
            proto.connected = 1
            proto.transport = self
            self._call("read", self, proto.connectionMade)
        else:
            self._call("read", self, proto.makeConnection, self)

    # -- starting ------------------------------------------------------------------
    def _plan(self, childFDs: dict | None) -> tuple[list[tuple], list[tuple], list[int]]:
        """Make the pipes (or the pty) and the file actions that put the
        child's ends at the child's descriptor numbers.  Returns our ends
        (child fd, our fd, reads, writes), the actions, and the descriptors to
        close here once the child runs."""
        if self.usePTY:
            master, slave = os.openpty()
            name = os.ttyname(slave)
            ends: list[tuple] = [(1, master, True, True)]
            # Opened in the child after setsid(), so it becomes the
            # controlling terminal; then copied onto stdout and stderr.
            actions = [(os.POSIX_SPAWN_OPEN, 0, name, os.O_RDWR, 0),
                       (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
            return ends, actions + self._close_others({0, 1, 2}), [slave]
        if childFDs is None:
            childFDs = {0: "w", 1: "r", 2: "r"}
        ends = []
        sources: dict[int, int] = {}  # child fd -> a descriptor of ours to copy there
        to_close: list[int] = []
        try:
            for child_fd, how in childFDs.items():
                if how in ("r", "w"):
                    read_end, write_end = os.pipe()
                    ours, theirs = (read_end, write_end) if how == "r" else (write_end, read_end)
                    ends.append((child_fd, ours, how == "r", how == "w"))
                    to_close.append(theirs)
                    sources[child_fd] = theirs
                elif isinstance(how, int):
                    sources[child_fd] = how
                else:
                    raise ValueError(f"childFDs[{child_fd}] must be 'r', 'w' or a descriptor, "
                                     f"not {how!r}")
            # Copies numbered above every target, so that no dup2 onto a
            # target overwrites a source still to be copied; they close on exec.
            floor = max(childFDs, default=2) + 1
            actions = []
            for child_fd, source in sources.items():
                high = _dup_above(source, floor)
                to_close.append(high)
                actions.append((os.POSIX_SPAWN_DUP2, high, child_fd))
        except BaseException:
            for fd in to_close + [end[1] for end in ends]:
                os.close(fd)
            raise
        return ends, actions + self._close_others(set(childFDs)), to_close

    @staticmethod
    def _close_others(keep: set[int]) -> list[tuple]:
        """Close actions for our inheritable descriptors the child must not get."""
        actions = []
        for fd in _open_descriptors():
            if fd in keep:
                continue
            try:
                inheritable = os.get_inheritable(fd)
            except OSError:
                continue  # closed meanwhile (the directory listing's own fd)
            if inheritable:
                actions.append((os.POSIX_SPAWN_CLOSE, fd))
        return actions

    def _spawn(self, executable: str, args: list, env: Any, path: str | None,
               actions: list[tuple]) -> int:
        if env is None:
            env = os.environ  # None passes ours (the default, {}, is an empty environment)
        # Signals ignored here (Python ignores SIGPIPE) get their default
        # back in the child, as after a fork and exec in C.
        defaults = [s for s in signal.valid_signals()
                    if s not in (signal.SIGKILL, signal.SIGSTOP)
                    and signal.getsignal(s) == signal.SIG_IGN]
        if path is not None and os.path.abspath(path) != os.path.abspath("."):
            argv = [sys.executable, "-I", "-S", "-c", _CHDIR_THEN_EXEC, path, executable, *args]
            return os.posix_spawn(sys.executable, argv, env, file_actions=actions,
                                  setsigdef=defaults, setsid=self.usePTY)
        return os.posix_spawnp(executable, args, env, file_actions=actions,
                               setsigdef=defaults, setsid=self.usePTY)

    def _watch_exit(self) -> None:
        pid = self.pid
        assert pid is not None, "watching a child that was never started"
        if not self._pidfd_mode:
            _waiting[pid] = self
            self.reactor.callFromThread(_reap_waiting, self.reactor)  # it may be gone already
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.reactor.callLater(0, self._exited, None)  # reaped by someone else already
            return
        self._watcher = ProcessExitWatcher(self, pid, pidfd)
        self.reactor.addReader(self._watcher)

    # -- events -------------------------------------------------------------------
    def _call(self, kind: str, source: Any, f: Callable[..., Any], *args: Any) -> None:
        """Run user code for the loop; an exception is logged."""
        try:
            self.reactor._call_user(kind, source, f, *args)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {getattr(f, '__qualname__', f)}")

    def _pipe_lost(self, pipe: ProcessPipe, reason: Failure) -> None:
        self.pipes.pop(pipe.child_fd, None)
        if not self.usePTY:
            self._call("read", pipe, self.proto.childConnectionLost, pipe.child_fd)
        self._maybe_ended()

    def _exited(self, status: int | None) -> None:
        """The child has been reaped."""
        if self._lost_process:
            return
        self._lost_process = True
        self.status = -1 if status is None else status
        self.pid = None
        source = self._watcher if self._watcher is not None else self
        self._call("read", source, self.proto.processExited, Failure(_exit_reason(status)))
        self._maybe_ended()

    def _maybe_ended(self) -> None:
        if self._lost_process and not self.pipes and self.proto is not None:
            proto, self.proto = self.proto, None
            status = None if self.status == -1 else self.status
            self._call("read", self, proto.processEnded, Failure(_exit_reason(status)))

    # -- IProcessTransport --------------------------------------------------------------
    def writeToChild(self, childFD: int, data: bytes) -> None:
        """Write to the pipe of the child's ``childFD`` (KeyError if none)."""
        self.pipes[childFD].write(data)

    def write(self, data: bytes) -> None:
        """Write to the child's stdin (silently nothing if it has none)."""
        pipe = self.pipes.get(1 if self.usePTY else 0)
        if pipe is not None:
            pipe.write(data)

    def writeSequence(self, seq: list[bytes]) -> None:
        self.write(b"".join(seq))

    def closeChildFD(self, childFD: int) -> None:
        """Close our end of the pipe to ``childFD`` (a write end after its
        buffer is flushed).  Nothing for the pty: it has no separate ends."""
        pipe = self.pipes.get(childFD)
        if pipe is not None and not self.usePTY:
            pipe.loseConnection()

    def closeStdin(self) -> None:
        """Close the child's stdin once what was written is delivered."""
        self.closeChildFD(0)

    def closeStdout(self) -> None:
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        self.closeChildFD(2)

    def loseConnection(self) -> None:
        """Close every pipe (the pty's master, with usePTY)."""
        for pipe in list(self.pipes.values()):
            pipe.loseConnection()

    def signalProcess(self, signalID: str | int) -> None:
        """Send a signal ("TERM", "KILL", "INT", "HUP", "STOP" or a number);
        ProcessExitedAlready once the child has been reaped."""
        if isinstance(signalID, str) and signalID in _SIGNAL_NAMES:
            number = int(getattr(signal, f"SIG{signalID}"))
        else:
            number = cast(int, signalID)  # anything else goes to the kernel as given
        if self.pid is None:
            raise error.ProcessExitedAlready()
        try:
            if self._watcher is not None:
                # Through the pidfd: never a process that reused the number.
                signal.pidfd_send_signal(self._watcher.pidfd, number)
            else:
                os.kill(self.pid, number)
        except ProcessLookupError:
            raise error.ProcessExitedAlready() from None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Feed the child's stdin from ``producer``."""
        pipe = self.pipes.get(0)
        if pipe is None:
            producer.stopProducing()
        else:
            pipe.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        pipe = self.pipes.get(0)
        if pipe is not None:
            pipe.unregisterProducer()

    def pauseProducing(self) -> None:
        """Stop reading the child's output (it blocks once its pipes fill)."""
        for pipe in self.pipes.values():
            if pipe.reads:
                pipe.pauseProducing()

    def resumeProducing(self) -> None:
        for pipe in self.pipes.values():
            if pipe.reads:
                pipe.resumeProducing()

    def getHost(self) -> ProcessAddress:
        return ProcessAddress("parent")

    def getPeer(self) -> ProcessAddress:
        return self.address

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} status={self.status}>"


def _dup_above(fd: int, floor: int) -> int:
    """A close-on-exec copy of ``fd`` numbered ``floor`` or more."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)


def _open_descriptors() -> list[int]:
    """This process's open descriptors (from /proc or /dev/fd; else 0-2)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return [int(name) for name in os.listdir(directory)]
        except OSError:
            continue
    return [0, 1, 2]


def spawn_process(reactor: Any, processProtocol: Any, executable: str, args: Any, env: Any,
                  path: str | None, usePTY: bool, childFDs: dict | None) -> Process:
    """reactor.spawnProcess: start the child and return its transport."""
    return Process(reactor, processProtocol, executable, args, env, path, usePTY, childFDs)
