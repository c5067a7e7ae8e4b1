"""Twisted's documented echo server and client, each traced in its own process."""

import signal
import socket
import subprocess
import sys
import time

import pytest
from twisted_support import ENV, app, events, line_of, run_traced, summary

SERVER, CLIENT = app("echoserv.py"), app("echoclient.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the traced echo server never listened")


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("echo")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "loopscope", "run", "-o", str(tmp / "server.jsonl"),
                               str(SERVER), str(port)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, server)
        client = run_traced(tmp / "client.jsonl", CLIENT, str(port))
    finally:
        server.send_signal(signal.SIGTERM)  # Twisted's handler stops the reactor
        server.communicate(timeout=60)
    assert server.returncode == 0
    return port, client.stdout, events(tmp / "server.jsonl"), events(tmp / "client.jsonl"), \
        summary(tmp / "server.jsonl"), summary(tmp / "client.jsonl")


@pytest.mark.timeout(180)
def test_the_client_got_its_echo(traces):
    _, stdout, *_ = traces
    assert "Server said: b'hello, world!'" in stdout
    assert "Connection lost - goodbye!" in stdout


@pytest.mark.timeout(180)
def test_each_side_records_the_connection_with_its_peer(traces):
    port, _, server, client, _, _ = traces
    [client_conn] = [e for e in client if e["ev"] == "conn"]
    assert client_conn["role"] == "client" and client_conn["peer"] == f"127.0.0.1:{port}"
    # the server saw that client (and the test's own probe for the port being open)
    [server_conn] = [e for e in server if e["ev"] == "conn" and e["peer"] == client_conn["host"]]
    assert server_conn["role"] == "server" and server_conn["host"] == f"127.0.0.1:{port}"
    for trace, conn in ((server, server_conn), (client, client_conn)):
        closes = [e for e in trace if e["ev"] == "close" and e["fd"] == conn["fd"] and e["t"] > conn["t"]]
        assert closes and closes[0]["reason"].startswith("ConnectionDone")
        [runtime] = [e for e in trace if e["ev"] == "runtime"]
        assert runtime["name"] == "twisted" and runtime["loop"].endswith("EPollReactor")


@pytest.mark.timeout(180)
def test_reads_are_named_by_the_protocol_method_on_the_connection(traces):
    _, _, server, client, server_summary, client_summary = traces
    for trace, found, fn, program in ((server, server_summary, "__main__.Echo.dataReceived", SERVER),
                                      (client, client_summary, "__main__.EchoClient.dataReceived", CLIENT)):
        reads = [e for e in trace if e["ev"] == "call" and e["name"] == fn]
        assert reads and all(e["kind"] == "read" for e in reads)
        [row] = [c for c in found["callbacks"] if c["fn"] == fn]
        assert (row["file"], row["line"]) == (str(program), line_of(program, "def dataReceived"))
        assert not [c for c in found["callbacks"] if c["fn"].endswith(".doRead")]
    # the server's read of the client's message happened on the client's connection
    client_host = [e for e in client if e["ev"] == "conn"][0]["host"]
    [server_conn] = [e for e in server if e["ev"] == "conn" and e["peer"] == client_host]
    assert [e for e in server if e["ev"] == "call" and e["name"] == "__main__.Echo.dataReceived"
            and e.get("fd") == server_conn["fd"]]
    # the client's connectionMade ran in the write that finished connecting: a loop call
    assert [e for e in client if e["ev"] == "call" and e["kind"] == "write"]
    assert server_summary["loop"]["iterations"] > 0 and client_summary["loop"]["iterations"] > 0
