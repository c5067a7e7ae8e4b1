"""What a Python child of a traced program pays to start: ``python -c pass`` started untraced
and traced, in alternating rounds, from one traced parent; the medians and their ratio.

    python bench/child_start.py [--rounds N] [--code CODE]

The script runs itself under ``loopscope run -o <temporary folder>/`` (the traced parent).
That parent starts the child ``sys.executable -c CODE`` (default ``pass``) ``--rounds`` times
(default 30) each way, in pairs in alternating order: traced, with the environment
``loopscope run`` gives it (tracer.spawned: the child boots through tracer/_boot/
sitecustomize.py and writes its own trace into the folder), and untraced, with that
environment taken off (no LOOPSCOPE_PARENT_TRACE, the boot directory off PYTHONPATH).  Each
start is timed from ``subprocess.run`` to its return: the child's start, its code and its
exit.  The temporary folder is removed afterwards.  Timing only; nothing here is asserted.

With ``PYTHONDONTWRITEBYTECODE`` set, a source edited since its bytecode was cached is
compiled again by every child, and the traced side looks tens of ms slower than it is:
first ``env -u PYTHONDONTWRITEBYTECODE python -m compileall -q tracer reactor``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def untraced_env() -> dict[str, str]:
    """This process's environment without what makes a Python child traced."""
    from tracer import spawned

    env = dict(os.environ)
    env.pop(spawned.ENV, None)
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != spawned.BOOT_DIR]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    else:
        env.pop("PYTHONPATH", None)
    return env


def measure(rounds: int, code: str) -> None:
    """In the traced parent: the paired rounds, then the medians."""
    from tracer import spawned

    if spawned.ENV not in os.environ:
        raise SystemExit("child_start.py --inner runs under `loopscope run` (run it without --inner)")
    envs = {"traced": dict(os.environ), "untraced": untraced_env()}
    times: dict[str, list[float]] = {"traced": [], "untraced": []}
    command = [sys.executable, "-c", code]
    for i in range(rounds):
        order = ("untraced", "traced") if i % 2 == 0 else ("traced", "untraced")
        for name in order:
            t = time.perf_counter()
            subprocess.run(command, env=envs[name], check=True)
            times[name].append(time.perf_counter() - t)
    untraced = statistics.median(times["untraced"]) * 1000
    traced = statistics.median(times["traced"]) * 1000
    print(f"child `python -c {code!r}`, {rounds} rounds each way, alternating")
    print(f"untraced child start: median {untraced:.1f} ms "
          f"(min {min(times['untraced']) * 1000:.1f})")
    print(f"traced child start:   median {traced:.1f} ms (min {min(times['traced']) * 1000:.1f})")
    print(f"traced / untraced: {traced / untraced:.2f}x (+{traced - untraced:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--code", default="pass", help="the child's program (python -c CODE)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        measure(args.rounds, args.code)
        return
    folder = tempfile.mkdtemp(prefix="loopscope-child-start-")
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        run = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", folder + os.sep,
                              os.path.abspath(__file__), "--inner", "--rounds", str(args.rounds),
                              "--code", args.code], env=env, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:  # loopscope's own lines on stderr are shown only then
            sys.stderr.write(run.stderr)
            raise SystemExit(run.returncode)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
