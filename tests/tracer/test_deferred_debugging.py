"""defer.setDebugging(True) in a traced app: the creation and first-firing stacks of a
Deferred collected with an unhandled failure are in the trace and in the dashboard's detail."""

from __future__ import annotations

import pytest
from recording import record_app

from tracer.model import TraceModel
from tui.detail import unhandled

pytestmark = pytest.mark.usefixtures("probe_impl")

APP = """
    import gc
    from reactor import defer, reactor

    def make():
        return defer.Deferred()                  # created here

    def fail(d):
        d.errback(ValueError("nobody handles this"))   # first fired here

    def lose_it(debugging):
        defer.setDebugging(debugging)
        d = make()
        fail(d)
        del d
        gc.collect()

    reactor.callLater(0.01, lose_it, True)
    reactor.callLater(0.02, lose_it, False)
    reactor.callLater(0.05, reactor.stop)
    reactor.run()
"""


def line_of(text: str) -> int:
    import textwrap
    lines = textwrap.dedent(APP).splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_an_unhandled_failure_carries_its_debugging_stacks(tmp_path) -> None:
    model = TraceModel.load(str(record_app(tmp_path, APP)))
    debugged, plain = model.state.unhandled
    assert debugged.created[-1].func == "make" and debugged.created[-1].line == line_of("created here")
    assert debugged.invoked[-1].func == "fail" and debugged.invoked[-1].line == line_of("first fired")
    assert plain.created == () and plain.invoked == ()       # debugging was off for this one
    text = unhandled(debugged, model).plain
    assert "created at (defer.setDebugging)" in text and "first fired at (defer.setDebugging)" in text
    assert f"▶ make  app.py:{line_of('created here')}" in text
    assert "setDebugging" not in unhandled(plain, model).plain
