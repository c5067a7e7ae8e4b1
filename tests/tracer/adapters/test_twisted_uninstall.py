"""Uninstalling the Twisted adapter leaves Twisted as it found it."""

import subprocess
import sys
import textwrap

import pytest
from twisted_support import ENV

SCRIPT = textwrap.dedent("""
    import sys
    import tracer
    from tracer import adapters

    session = tracer.start(sys.argv[1])
    meta_path = list(sys.meta_path)
    adapters.install(session)
    from twisted.internet import base, defer, main, reactor, threads
    from twisted.logger import globalLogPublisher
    from twisted.web import server

    observers = list(globalLogPublisher._observers)
    pool = reactor.getThreadPool()
    threads.deferToThread(sum, [1, 2]).addCallback(lambda _: reactor.stop())
    reactor.run()
    adapters.uninstall()

    def ours(value):
        return (getattr(value, "__module__", None) or "").startswith("tracer")

    left = [f"{owner!r}.{name}" for owner in (defer.Deferred, base.DelayedCall, server.Request,
                                              defer, main, reactor, pool)
            for name, value in vars(owner).items()
            if ours(value) or ours(type(value)) or name == "_trace_id"]
    left += [name for name in vars(session.probe) if name == "_origin"]
    left += [repr(o) for o in globalLogPublisher._observers if ours(o) and o not in observers]
    assert sys.meta_path == meta_path, sys.meta_path
    assert type(reactor._poller).__name__ == "epoll"
    print("left:", left)
    tracer.stop()
""")


@pytest.mark.timeout(60)
def test_uninstall_puts_every_replaced_attribute_back(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "t.jsonl")],
                          capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "left: []"


BEFORE_RUN = textwrap.dedent("""
    import sys
    import tracer
    from tracer import adapters

    session = tracer.start(sys.argv[1])
    adapters.install(session)
    from twisted.internet import reactor
    adapters.uninstall()
    after = reactor._eventTriggers["shutdown"].after
    print("left:", [f for f, _args, _kw in after
                    if (getattr(f, "__module__", None) or "").startswith("tracer")])
    tracer.stop()
""")


@pytest.mark.timeout(60)
def test_uninstall_before_the_reactor_ran_takes_back_its_shutdown_trigger(tmp_path):
    """As in a forked worker, which installs the adapter again for its own recording."""
    done = subprocess.run([sys.executable, "-c", BEFORE_RUN, str(tmp_path / "t.jsonl")],
                          capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "left: []"
