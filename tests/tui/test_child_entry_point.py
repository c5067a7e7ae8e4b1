"""The ``run --tui`` child starts loopscope by an entry point no file of the user's can shadow."""

from __future__ import annotations

import threading

from tracer.reader import read_trace
from tui.child import ChildApp

APP = """\
from reactor import reactor
reactor.callLater(0.01, print, "app ran")
reactor.callLater(0.02, reactor.stop)
reactor.run()
"""
SHADOW = "raise SystemExit('the user\\'s own {name}.py was imported instead of loopscope\\'s')\n"


def test_child_ignores_a_tracer_py_in_the_working_directory(tmp_path, monkeypatch):
    for name in ("tracer", "loopscope", "tui"):
        (tmp_path / f"{name}.py").write_text(SHADOW.format(name=name))
    (tmp_path / "app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    trace = tmp_path / "t.jsonl"
    lines: list[str] = []
    exited: list[int] = []
    done = threading.Event()
    child = ChildApp(["app.py"], str(trace), 50.0)
    child.start(lines.append, lambda code: (exited.append(code), done.set()))
    assert done.wait(60), "the child did not finish"
    assert exited == [0], lines
    assert "app ran" in lines
    header, events = read_trace(str(trace))
    assert header["argv"][0] == "app.py" and any(e["ev"] == "call" for e in events)
