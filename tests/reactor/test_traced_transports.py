"""The transports added for the public API (UDP ports, process pipes, TLS
connections) appear in a trace as descriptors and connections, and the user
code they run is named."""

from __future__ import annotations

import ssl
import sys
from typing import Any

import pytest
from selfsigned import make_certificate

import tracer
from reactor import Reactor, defer, protocol, udp
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


class Upper(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.ended = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"piped")
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


def test_process_pipes_are_traced(trace_path: Any, loop: Reactor, run_until: Any) -> None:
    tracer.start(str(trace_path))
    p = Upper()
    code = "import sys; sys.stdout.write(sys.stdin.read().upper())"
    t = loop.spawnProcess(p, sys.executable, [sys.executable, "-c", code], env=None)
    pid = t.pid
    run_until(p.ended)
    tracer.stop()
    assert p.out == b"PIPED"
    events = events_of(trace_path)
    conns = {e["host"]: e for e in events if e["ev"] == "conn" and e["role"] == "process"}
    assert set(conns) == {"stdin", "stdout", "stderr"}
    assert all(e["peer"] == f"pid {pid} {sys.executable}" for e in conns.values())
    closes = {e["fd"]: e for e in events if e["ev"] == "close"}
    assert closes[conns["stdin"]["fd"]]["out"] == len(b"piped")
    assert closes[conns["stdout"]["fd"]]["in"] == len(b"PIPED")
    types = {e["type"] for e in events if e["ev"] == "fdadd"}
    assert {"ProcessPipe", "ProcessExitWatcher"} <= types
    called = called_functions(events)
    for name in ("Upper.connectionMade", "Upper.outReceived", "Upper.processEnded"):
        assert any(fn.endswith(name) for fn in called), name


def test_tls_connections_are_traced(trace_path: Any, loop: Reactor, run_until: Any,
                                    tmp_path: Any) -> None:
    cert, key = make_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    class Shout(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data.upper())
            self.transport.loseConnection()

    class Whisper(protocol.Protocol):
        def __init__(self) -> None:
            self.heard = defer.Deferred()

        def connectionMade(self) -> None:
            self.transport.write(b"secret")

        def dataReceived(self, data: bytes) -> None:
            self.heard.callback(data)

    tracer.start(str(trace_path))
    port = loop.listenSSL(0, protocol.Factory.forProtocol(Shout), server_context,
                          interface="127.0.0.1")
    whisper = Whisper()
    protocol.ClientCreator(loop, lambda: whisper).connectSSL("localhost", port.getHost().port,
                                                             client_context)
    assert run_until(whisper.heard) == b"SECRET"
    port.stopListening()
    tracer.stop()
    events = events_of(trace_path)
    roles = {e["role"] for e in events if e["ev"] == "conn"}
    assert {"server", "client"} <= roles
    tls_fds = {e["fd"] for e in events if e["ev"] == "fdadd" and e["type"] == "TLSConnection"}
    assert len(tls_fds) == 2
    conn_fds = {e["fd"] for e in events if e["ev"] == "conn" and e["role"] in ("server", "client")}
    assert tls_fds == conn_fds
    called = called_functions(events)
    for name in ("Shout.dataReceived", "Whisper.connectionMade", "Whisper.dataReceived"):
        assert any(fn.endswith(name) for fn in called), name
