"""reactor.base.install(): code that imports Twisted's reactor runs on
loopscope's, in a real child process (Twisted's own helper scripts do this)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import reactor.base
installed = reactor.base.install()
from twisted.internet import reactor
import reactor as loopscope
assert reactor is installed is loopscope.reactor, reactor

def done(result):
    print("resolved", result, type(reactor).__module__, flush=True)
    reactor.stop()

reactor.callWhenRunning(lambda: reactor.resolve("localhost").addBoth(done))
reactor.callLater(10, reactor.stop)
reactor.run()
"""


def test_twisted_code_runs_on_the_installed_reactor() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "resolved 127.0.0.1 reactor.base\n"


def test_installing_after_twisted_chose_its_reactor_is_refused() -> None:
    program = ("from twisted.internet import reactor\nimport reactor.base\n"
               "from twisted.internet.error import ReactorAlreadyInstalledError\n"
               "try:\n    reactor.base.install()\n"
               "except ReactorAlreadyInstalledError:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.stdout == "refused\n", out.stderr
