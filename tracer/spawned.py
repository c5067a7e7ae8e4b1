"""Tracing the Python programs a traced process starts (``subprocess.run([sys.executable,
...])``, multiprocessing's spawn and forkserver start methods), each into its own trace.

A forked child goes on with its parent's tracer (tracer.session's fork hooks).  A program
started afresh has nothing of it, so a traced process leaves two things in its environment,
which every child inherits:

- :data:`ENV`: JSON saying where the parent traces (its trace's path, whether that is a trace
  folder, its pid, the threshold), rewritten by each traced process for its own children;
- :data:`BOOT_DIR` first on ``PYTHONPATH``: it holds only a ``sitecustomize`` module, which
  Python imports at startup.  It takes its directory off ``sys.path`` again, imports the
  ``sitecustomize`` it hides (the user's or the system's own, if any), then calls
  :func:`boot`.

A Python child that reads no PYTHONPATH (``-E``, ``-I``) finds :data:`BOOT_DIR` all the same
when loopscope is installed in its environment: ``loopscope.pth`` in site-packages (setup.py),
whose one line Python runs at every start, puts it first on ``sys.path`` when :data:`ENV` is
set, the environment is ignored and the parent's PYTHONPATH holds this installation's own; the
child then boots as the others do, once.

A Python child whose environment is the parent's choice (``subprocess.run(..., env={...})``)
has neither.  On Linux a traced process therefore also writes :data:`ENV`'s value to a file
named by its pid in :func:`registry`, private to the user, with its start time (a pid is
reused once a process is gone); ``loopscope.pth`` looks there for the file of the process that
started it when :data:`ENV` is not set, and :func:`adopt` takes :data:`ENV` from it if it is
this installation's and the process is the same one.  A program started with :data:`ENV` set
empty is never traced: loopscope's own helpers that a process starts just before it traces
(``run --otlp``'s sender), which would find the file when they boot, are started so.  (A
loopscope used from a source checkout it did not install has no ``loopscope.pth``: only the
children that keep their environment are traced.)

A child that is not a Python program ignores both and runs unchanged.  A Python child that is
not this loopscope's (another interpreter, another installation: its ``tracer`` is not this
package), or that runs without ``site`` (``-S``), or that is multiprocessing's resource
tracker (it runs no program code) is not traced.  The child's ``sys.argv`` is its own; its
trace's header records the command line it was started with.
"""

from __future__ import annotations

import atexit
import os
import stat
import sys
import threading

import orjson

from tracer.output import warn

#: ``typing.TYPE_CHECKING`` without importing :mod:`typing`, which a Python child traced through
#: ``_boot/sitecustomize.py`` would otherwise import at its start, for nothing at run time (about
#: 5 ms of it).  Type checkers take any ``TYPE_CHECKING`` as True; the modules this package
#: imports at a child's start import their typing-only names under it the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tracer.session import Tracer

#: The environment variable a traced process tells its children where it traces by.
ENV = "LOOPSCOPE_PARENT_TRACE"
#: The directory put first on a traced process's PYTHONPATH (it holds only sitecustomize.py).
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")
#: Programs multiprocessing starts for its own bookkeeping, which run no program code.
HELPERS = ("from multiprocessing.resource_tracker import",)


def propagate(session: Tracer) -> None:
    """Make the Python programs this process starts from now on trace into ``session``'s
    folder (or beside its file), as its children."""
    value = orjson.dumps({
        "trace": os.path.abspath(session.path), "folder": session.folder,
        "pid": os.getpid(), "threshold_ms": session.threshold_ms}).decode()
    os.environ[ENV] = value
    path = os.environ.get("PYTHONPATH", "")
    if BOOT_DIR not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = BOOT_DIR + (os.pathsep + path if path else "")
    _register(value)


def registry() -> str | None:
    """The directory where traced processes say where they trace, for their children that
    get another environment: a fixed place (such a child's environment may name none),
    one per user.  None where there is none (not Linux: no start times to check pids by)."""
    if not sys.platform.startswith("linux"):
        return None
    return f"/tmp/loopscope-{os.getuid()}"


def _private(folder: str) -> bool:
    """Whether ``folder`` is a directory of this user that no one else may write to (another
    user could make it first, to have this user's children trace where they say)."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[19].decode() if len(fields) > 19 else None  # field 22 of the whole line


def registry_entry(value: str, started: str) -> bytes:
    """A registry file: :data:`ENV`'s ``value``, for the children of the process that
    ``started`` at that time (:func:`_started`), with this installation's boot directory."""
    return orjson.dumps({"started": started, "boot": BOOT_DIR, "env": value})


def _register(value: str) -> None:
    """Write this process's registry file (it replaces the one of an earlier recording).
    Best effort: without it only the children that keep their environment are traced."""
    folder = registry()
    started = _started(os.getpid())
    if folder is None or started is None:
        return
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _private(folder):
            return
        path = os.path.join(folder, str(os.getpid()))
        with open(path + ".new", "wb") as f:
            f.write(registry_entry(value, started))
        os.replace(path + ".new", path)
        for name in os.listdir(folder):  # the files of traced processes killed meanwhile
            if name.isdigit() and not os.path.exists(f"/proc/{name}"):
                os.unlink(os.path.join(folder, name))
    except OSError:
        pass
    atexit.unregister(unregister)  # once, however many recordings this process makes
    atexit.register(unregister)


def withdraw() -> None:
    """This process no longer traces: the programs it starts from now on are not its
    children.  Undoes :func:`propagate` (the environment is left alone where the program has
    changed it since) and removes the registry file."""
    ours = _parent()
    if ours is not None and ours["pid"] == os.getpid():
        del os.environ[ENV]
        entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if entries[0] == BOOT_DIR:
            if len(entries) > 1:
                os.environ["PYTHONPATH"] = os.pathsep.join(entries[1:])
            else:
                del os.environ["PYTHONPATH"]
    unregister()


def unregister() -> None:
    """Remove this process's registry file: it no longer traces (or is about to exit)."""
    folder = registry()
    if folder is not None:
        try:
            os.unlink(os.path.join(folder, str(os.getpid())))
        except OSError:
            pass


def adopt() -> None:
    """In a Python program whose environment has no :data:`ENV` (called by loopscope.pth when
    the registry has a file for the process that started it): when that file is the parent's
    (written by the process running under that pid now, in a private folder) and names this
    installation's boot directory, set :data:`ENV` from it and put :data:`BOOT_DIR` first on
    ``sys.path``, so that the program boots traced as any other child.  Never raises."""
    folder = registry()
    if folder is None or ENV in os.environ or not _private(folder):
        return
    parent = os.getppid()
    try:
        with open(os.path.join(folder, str(parent)), "rb") as f:
            entry = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return
    if not (isinstance(entry, dict) and entry.get("boot") == BOOT_DIR
            and isinstance(entry.get("env"), str) and entry.get("started") == _started(parent)):
        return
    os.environ[ENV] = entry["env"]
    if BOOT_DIR not in sys.path:
        sys.path.insert(0, BOOT_DIR)


def _parent() -> dict | None:
    """The parent's :data:`ENV`, checked; None when this process is not to be traced."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    try:
        parent = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(parent, dict) and isinstance(parent.get("trace"), str)
            and type(parent.get("pid")) is int and isinstance(parent.get("folder"), bool)
            and isinstance(parent.get("threshold_ms"), (int, float))):
        return None
    return parent


def boot() -> None:
    """Start tracing this Python program as a child of the process named by :data:`ENV`
    (called by ``_boot/sitecustomize.py`` at startup).  Never raises: a child that cannot be
    traced runs untraced, with a one-line warning."""
    parent = _parent()
    command = " ".join(sys.orig_argv[1:])
    if parent is None or any(helper in command for helper in HELPERS):
        return
    if parent["pid"] == os.getpid():
        return  # this process's own ENV (a program that re-imports site): already traced
    try:
        from tracer import adapters, session
        running = session.start_child(parent["trace"], parent["folder"],
                                      float(parent["threshold_ms"]), parent["pid"],
                                      sys.orig_argv[1:])
    except Exception as e:  # noqa: BLE001 - the program must run, traced or not
        warn(f"the child process {os.getpid()} ({command[:80]}) is not traced: {e}")
        return
    propagate(running)
    adapters.install(running)
    # Both run their callbacks last-registered first: the adapters go before the trace ends.
    atexit.register(adapters.uninstall)
    register = getattr(threading, "_register_atexit", None)  # see session.stop_at_thread_shutdown
    if register is not None:
        register(adapters.uninstall)

