"""The package makes its default reactor when it is first asked for, not on import: the
tracer imports ``reactor._instrument`` in every traced process."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent("""
    import os, sys, threading
    before = len(os.listdir("/proc/self/fd"))
    import reactor._instrument
    print("imported", "reactor.base" in sys.modules, len(os.listdir("/proc/self/fd")) - before)
    import reactor as package
    made = []
    threads = [threading.Thread(target=lambda: made.append(package.reactor)) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    from reactor import Reactor, reactor
    print("asked", type(reactor) is Reactor, all(r is reactor for r in made))
    try:
        package.no_such_thing
    except AttributeError as e:
        print(e)
""")


def test_importing_the_package_makes_no_reactor_until_one_is_asked_for():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["imported False 0", "asked True True",
                                        "module 'reactor' has no attribute 'no_such_thing'"]
