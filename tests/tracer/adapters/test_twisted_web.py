"""A twisted.web server on Twisted's own reactor, under load from Twisted's Agent: a page
whose render_GET blocks for 200 ms on every tenth request, and one answered through deferLater."""

import orjson
import pytest
from twisted_support import app, callbacks, line_of, run_traced, summary

WEB = app("web_server.py")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    run_traced(tmp / "web.jsonl", WEB, str(tmp / "slept.json"))
    return summary(tmp / "web.jsonl"), orjson.loads((tmp / "slept.json").read_bytes())


@pytest.mark.timeout(120)
def test_the_blocking_render_get_is_named_with_its_duration_and_stuck_line(web):
    found, measured = web
    assert measured["served"] == 30 and len(measured["slept"]) == 3
    rows = sorted((b for b in found["blocking"] if b["fn"] == "__main__.Page.render_GET"),
                  key=lambda b: b["t_ms"])
    assert len(rows) == 3  # every tenth of 30 requests
    for row, slept in zip(rows, measured["slept"]):
        assert (row["file"], row["line"]) == (str(WEB), line_of(WEB, "def render_GET"))
        assert row["kind"] == "read"
        # the program's own clock around its sleep, against the trace's duration of the call
        assert abs(row["dur_ms"] - slept * 1000) <= 0.1 * slept * 1000
        assert row["stack"][-1] == {"file": str(WEB), "line": line_of(WEB, "# blocks the loop"),
                                    "func": "Page.render_GET"}


@pytest.mark.timeout(120)
def test_requests_are_read_by_the_http_channel_and_the_later_page_answers_from_a_timer(web):
    found, _ = web
    [reads] = callbacks(found, "twisted.web.http.HTTPChannel.dataReceived")
    assert reads["kind"] == "read" and reads["count"] >= 60
    [page] = callbacks(found, "__main__.Page.render_GET")
    assert page["count"] == 30 and page["blocking"] == 3
    [answer] = callbacks(found, "__main__.Later.answer")  # deferLater's timer, by its function
    assert (answer["kind"], answer["count"], answer["blocking"]) == ("timer", 30, 0)
    assert found["deferreds"]["unhandled"] == []
