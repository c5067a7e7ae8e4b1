"""Twisted's asyncio reactor: the same events as on the default reactor, counted once."""

import subprocess
import sys
import textwrap

import pytest
from twisted_support import ENV, app, callbacks, events, run_traced, summary

PROGRAM = app("asyncio_echo.py")


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    trace = tmp_path_factory.mktemp("asyncio") / "asyncio.jsonl"
    run_traced(trace, PROGRAM)
    return summary(trace), events(trace)


@pytest.mark.timeout(120)
def test_reads_timers_threads_and_connections_on_the_asyncio_reactor(traced):
    found, trace = traced
    [runtime] = [e for e in trace if e["ev"] == "runtime"]
    assert runtime["name"] == "twisted"
    assert runtime["loop"] == "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
    assert "asyncio loop directly" in runtime["unseen"]
    [echo] = callbacks(found, "__main__.Echo.dataReceived")
    [pinger] = callbacks(found, "__main__.Pinger.dataReceived")
    assert echo["kind"] == pinger["kind"] == "read"
    # each read counted once (not also as an asyncio handle); the server's last read finds
    # the end of the stream
    assert pinger["count"] == 20 and echo["count"] in (20, 21)
    assert sorted(e["role"] for e in trace if e["ev"] == "conn") == ["client", "server"]
    assert len([e for e in trace if e["ev"] == "close"]) == 2
    assert [e["name"] for e in trace if e["ev"] == "tsub"] == ["time.sleep"]
    assert found["loop"]["iterations"] > 0


@pytest.mark.timeout(60)
def test_the_adapter_claims_the_asyncio_loop_under_the_reactor_until_uninstalled(tmp_path):
    script = textwrap.dedent(f"""
        import tracer
        from tracer import adapters
        session = tracer.start({str(tmp_path / "t.jsonl")!r})
        adapters.install(session)
        from twisted.internet import asyncioreactor
        asyncioreactor.install()
        from twisted.internet import reactor
        loop = reactor._asyncioEventloop
        print(adapters.claimed_by(loop))
        adapters.uninstall()
        print(adapters.claimed_by(loop))
        tracer.stop()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=60)
    assert done.stdout.split() == ["twisted", "None"], done.stderr
