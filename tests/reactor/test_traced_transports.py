"""The transports added for the public API (UDP ports, process pipes, TLS
connections) appear in a trace as descriptors and connections, and the user
code they run is named."""

from __future__ import annotations

from typing import Any

import pytest

import tracer
from reactor import Reactor, defer, udp
from tracer.reader import read_trace

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def trace_path(tmp_path: Any) -> Any:
    yield tmp_path / "t.jsonl"
    tracer.stop()


def events_of(path: Any) -> list[dict]:
    _, events = read_trace(str(path), warn=pytest.fail)
    return list(events)


def called_functions(events: list[dict]) -> set[str]:
    sites = {e["id"]: e["fn"] for e in events if e["ev"] == "site"}
    return {sites[e["site"]] for e in events if e["ev"] == "call"}


class Answer(udp.DatagramProtocol):
    def __init__(self) -> None:
        self.got = defer.Deferred()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.got.callback(datagram)


def test_udp_ports_are_traced(trace_path: Any, loop: Reactor, run_until: Any) -> None:
    tracer.start(str(trace_path))
    answer = Answer()
    server = loop.listenUDP(0, answer, interface="127.0.0.1")
    client = loop.listenUDP(0, udp.DatagramProtocol(), interface="127.0.0.1")
    client.connect("127.0.0.1", server.getHost().port)
    client.write(b"traced")
    run_until(answer.got)
    run_until(server.stopListening())
    run_until(client.stopListening())
    tracer.stop()
    events = events_of(trace_path)
    server_fd = server._fd
    conns = [e for e in events if e["ev"] == "conn"]
    assert {"fd": server_fd, "role": "udp", "host": f"127.0.0.1:{server.getHost().port}",
            "peer": None}.items() <= conns[0].items()
    assert conns[-1]["peer"] == f"127.0.0.1:{server.getHost().port}"  # the connected client
    assert any(e["ev"] == "fdadd" and e["fd"] == server_fd and e["type"] == "UDPPort"
               for e in events)
    closes = {e["fd"]: e for e in events if e["ev"] == "close"}
    assert closes[server_fd]["in"] == len(b"traced")
    assert any(fn.endswith("Answer.datagramReceived") for fn in called_functions(events))
