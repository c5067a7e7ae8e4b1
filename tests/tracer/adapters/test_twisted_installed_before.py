"""A reactor installed before tracing started (imported by something that ran first) is
instrumented when the adapter is installed."""

import subprocess
import sys
import textwrap

import pytest
from twisted_support import ENV, callbacks, summary

SCRIPT = textwrap.dedent("""
    import sys
    from twisted.internet import reactor, task  # before tracing
    import tracer
    from tracer import adapters

    def tick():
        pass

    session = tracer.start(sys.argv[1])
    adapters.install(session)
    task.LoopingCall(tick).start(0.01)
    reactor.callLater(0.1, reactor.stop)
    reactor.run()
    adapters.uninstall()
    tracer.stop()
""")


@pytest.mark.timeout(60)
def test_a_reactor_installed_before_tracing_is_traced(tmp_path):
    trace = tmp_path / "before.jsonl"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(trace)], capture_output=True,
                          text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    found = summary(trace)
    [tick] = callbacks(found, "__main__.tick")
    assert tick["kind"] == "timer" and tick["count"] >= 2
    assert found["loop"]["iterations"] > 0
    assert [c for c in found["callbacks"] if c["kind"] == "deferred"]  # Deferreds seen too
