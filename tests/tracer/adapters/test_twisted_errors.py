"""An exception escaping a protocol's dataReceived, which Twisted catches and logs, is a read
call that raised, with the error and its traceback (both reactors)."""

import pytest
from twisted_support import app, events, line_of, run_traced, summary

PROGRAM = app("bad_protocol.py")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reactor", ["default", "asyncio"])
def test_an_exception_escaping_data_received_is_an_error_of_that_read(tmp_path, reactor):
    trace = tmp_path / "bad.jsonl"
    done = run_traced(trace, PROGRAM, *(["asyncio"] if reactor == "asyncio" else []))
    assert "ValueError: cannot parse this" in done.stderr  # Twisted's own report
    [failed] = [e for e in events(trace) if e["ev"] == "call" and "exc" in e]
    assert (failed["name"], failed["kind"], failed["exc"]) == ("__main__.Bad.dataReceived", "read", "ValueError")
    [error] = summary(trace)["errors"]
    assert error == {"fn": "__main__.Bad.dataReceived", "exc": "ValueError", "msg": "cannot parse this"}
    [line] = [e for e in events(trace) if e["ev"] == "error"]
    assert line["stack"][-1] == [str(PROGRAM), line_of(PROGRAM, "# escapes to Twisted"), "Bad.dataReceived"]
