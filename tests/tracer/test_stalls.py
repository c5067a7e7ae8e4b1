"""One stall per time the loop blocked, named after the user's code, on a real recording.

The app blocks the loop five ways, each through a wrapper that used to name the row: a timer
firing a Deferred (``callLater(d.callback, x)``), a LoopingCall, ``deferLater``, a partial, and
a protocol whose ``dataReceived`` it inherited.  Each must be one stall named after the
function the user wrote, with the wrapper's nested calls as its chain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from recording import ROOT, record_app

import tracer
from reactor import Reactor, task

from tracer.model import Frame, Site, TraceModel
from tracer.names import is_inherited, is_user_file, stall_culprit, user_frame
from tracer.summary import format_text, summarize

pytestmark = pytest.mark.usefixtures("probe_impl")

APP = """
    import functools
    import time
    from reactor import basic, defer, protocol, reactor, task

    def parse_reply(reply):
        time.sleep(0.08)                      # stall 1: in a Deferred a timer fired

    def tick():
        time.sleep(0.08)                      # stall 2: in a LoopingCall
        loop.stop()

    def later_work():
        time.sleep(0.08)                      # stall 3: through deferLater

    def with_argument(n):
        time.sleep(0.08)                      # stall 4: a partial

    class Chat(basic.LineReceiver):           # dataReceived is LineReceiver's
        delimiter = b"\\n"
        def lineReceived(self, line):
            time.sleep(0.08)                  # stall 5: in a method of an inherited read
            self.transport.loseConnection()

    d = defer.Deferred()
    d.addCallback(parse_reply)
    reactor.callLater(0.01, d.callback, b"reply")
    loop = task.LoopingCall(tick)
    reactor.callLater(0.2, loop.start, 1.0)
    reactor.callLater(0.4, task.deferLater, reactor, 0.01, later_work)
    reactor.callLater(0.6, functools.partial(with_argument, 3))
    factory = protocol.Factory()
    factory.protocol = Chat
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")

    class Send(protocol.Protocol):
        def connectionMade(self):
            self.transport.write(b"hello\\n")

    client = protocol.ClientFactory()
    client.protocol = Send
    reactor.callLater(0.8, reactor.connectTCP, "127.0.0.1", port.getHost().port, client)
    reactor.callLater(1.5, reactor.stop)
    reactor.run()
"""


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory, probe_impl: str) -> Path:
    path = record_app(tmp_path_factory.mktemp("stalls"), APP)
    return path


def test_each_block_is_one_stall_named_by_the_users_function(trace: Path) -> None:
    model = TraceModel.load(str(trace))
    stalls = model.state.stalls
    names = [stall_culprit(s, model.site).fn for s in stalls]
    assert names == ["parse_reply", "tick", "later_work", "with_argument", "Chat.lineReceived"]
    assert all(s.call.depth == 0 for s in stalls)
    app = (trace.parent / "app.py").read_text().splitlines()
    for stall in stalls:                       # each names its stuck line: the sleep
        culprit = stall_culprit(stall, model.site)
        assert "time.sleep(0.08)" in app[culprit.line - 1], culprit
        assert culprit.file.endswith("app.py")


def test_a_timer_firing_a_deferred_has_the_callback_as_its_chain(trace: Path) -> None:
    model = TraceModel.load(str(trace))
    fired = model.state.stalls[0]
    assert model.site(fired.call.site).fn.endswith("Deferred.callback")
    assert [model.site(b.site).fn for b in fired.chain] == ["__main__.parse_reply"]
    assert fired.chain[0].depth == 1 and fired.chain[0].kind == "deferred"


def test_an_inherited_read_is_the_users_class_defined_in_the_base_file(trace: Path) -> None:
    model = TraceModel.load(str(trace))
    read = model.site(model.state.stalls[-1].call.site)
    assert read.fn == "__main__.Chat.dataReceived" and read.file.endswith("reactor/basic.py")
    assert is_inherited(read)
    assert not is_inherited(model.site(model.state.stalls[0].chain[0].site))   # parse_reply


def test_summary_counts_stalls_and_keeps_the_nested_rows_with_their_depth(trace: Path) -> None:
    summary = summarize(str(trace))
    assert len(summary["stalls"]) == 5
    depths = sorted(b["depth"] for b in summary["blocking"])
    assert depths[:5] == [0] * 5 and len(depths) > 5       # nested rows stay, deeper
    fired = next(s for s in summary["stalls"] if s["fn"] == "parse_reply")
    assert fired["callback"]["fn"].endswith("Deferred.callback")
    assert [c["fn"] for c in fired["chain"]] == ["__main__.parse_reply"]
    text = format_text(summary)
    assert "Blocking callbacks (5 stalls, with " in text
    assert "__main__.Chat.dataReceived (inherited, defined at reactor/basic.py:" in text


TICKS = """
    from reactor import reactor, task

    runs = 0

    def tick():
        global runs
        runs += 1
        if runs == 3:
            reactor.stop()

    task.LoopingCall(tick).start(0.02, now=False)
    reactor.run()
"""


def test_a_looping_calls_runs_are_counted_under_its_function(tmp_path: Path) -> None:
    """Not only its stalls: every run of a LoopingCall is a call of the user's function (the
    Callbacks view and the late-timer warning name it), none of ``LoopingCall.__call__``."""
    callbacks = summarize(str(record_app(tmp_path, TICKS)))["callbacks"]
    tick = next(c for c in callbacks if c["fn"] == "__main__.tick")
    assert (tick["kind"], tick["count"]) == ("timer", 3)
    assert not [c for c in callbacks if "LoopingCall.__call__" in c["fn"]]


def test_user_files_and_frames() -> None:
    assert is_user_file("/home/me/chat/server.py")
    assert is_user_file("/work/anything/tracer/demo.py")          # the demo plays the app
    for framework in ("/work/main/reactor/basic.py", "/x/tracer/model.py",
                      "/usr/lib/python3.11/json/decoder.py", "<frozen importlib._bootstrap>", "",
                      "/v/lib/python3.12/site-packages/twisted/internet/base.py"):
        assert not is_user_file(framework), framework
    stack = (Frame("/w/reactor/basic.py", 76, "LineReceiver.dataReceived"),
             Frame("/app/server.py", 12, "Server.lineReceived"),
             Frame("/usr/lib/python3.11/json/decoder.py", 337, "JSONDecoder.decode"))
    assert user_frame(stack) == stack[1]
    assert not is_inherited(Site("app.server.Server.lineReceived", "/app/app/server.py", 10))
    assert is_inherited(Site("app.server.Server.dataReceived", "/w/reactor/basic.py", 67))


def test_recording_stopped_inside_a_blocking_callback_keeps_its_stall(trace_path: Path) -> None:
    """pytest-twisted runs each test inside a reactor callback and the plugin stops tracing
    with the test; SIGTERM stops it inside whatever callback blocks.  The calls still running
    are written as ending then, so the stall is in the trace, and the program goes on."""
    reactor = Reactor()
    went_on = []

    def handler() -> None:
        time.sleep(0.12)
        tracer.stop()  # inside the timer's call and the Deferred callback's
        went_on.append(True)

    tracer.start(str(trace_path), threshold_ms=50)
    task.deferLater(reactor, 0, handler).addCallback(lambda _: reactor.stop())
    reactor.run(installSignalHandlers=False)
    assert went_on == [True]
    summary = summarize(str(trace_path))
    [stall] = summary["stalls"]
    assert stall["fn"].endswith("<locals>.handler") and stall["file"] == __file__
    assert stall["dur_ms"] >= 115
    assert [c["fn"] for c in stall["chain"]] == ["reactor.task.deferLater.<locals>.run"]
    assert summary["errors"] == []


ASYNCIO_HANGS = """
    import asyncio, time

    def stuck():
        time.sleep(30)   # hangs until the program is stopped

    async def main():
        asyncio.get_running_loop().call_later(0.02, stuck)
        await asyncio.sleep(60)

    asyncio.run(main())
"""


def test_a_program_stopped_by_sigterm_while_it_blocks_keeps_that_stall(tmp_path: Path) -> None:
    """An asyncio program leaves SIGTERM to the tracer, which finishes the trace from inside
    the callback that blocks: that call is written as ending then, and is the stall."""
    (tmp_path / "app.py").write_text(textwrap.dedent(ASYNCIO_HANGS))
    trace = tmp_path / "app.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                             "app.py"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while b'"ev":"stall"' not in (trace.read_bytes() if trace.exists() else b""):
        assert time.monotonic() < deadline and proc.poll() is None, "no stall was sampled"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, stderr   # SIGTERM still ends it, as before
    summary = summarize(str(trace))
    [stall] = summary["stalls"]
    assert stall["fn"] == "stuck" and stall["kind"] == "timer"
    assert 50 <= stall["dur_ms"] < 30_000
    assert stall["stack"][-1]["line"] == 5
