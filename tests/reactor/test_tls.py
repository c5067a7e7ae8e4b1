"""TLS: listenSSL, connectSSL, startTLS and ssl: endpoints, over 127.0.0.1 with a
self-signed certificate made here (with the openssl command)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from collecting import Collect
from selfsigned import make_certificate

from reactor import Reactor, basic, defer, endpoints, error, protocol, tcp, tls
from reactor.threads import deferToThreadPool

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: Any) -> Path:
    """A directory with key.pem and cert.pem, for "localhost" only."""
    where = tmp_path_factory.mktemp("certs")
    make_certificate(where)
    return where


@pytest.fixture
def server_context(certs: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    return context


@pytest.fixture
def client_context(certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    return context


class Echo(protocol.Protocol):
    def connectionMade(self) -> None:
        self.factory.connections.append(self)

    def handshakeCompleted(self) -> None:
        self.factory.handshakes += 1

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        if not self.factory.first_lost.called:
            self.factory.first_lost.callback(reason.type)


class EchoFactory(protocol.Factory):
    """``first_lost`` fires with the exception class the first connection ended with."""

    protocol = Echo

    def __init__(self) -> None:
        self.connections: list[Echo] = []
        self.handshakes = 0
        self.first_lost = defer.Deferred()


class Talker(Collect):
    """Writes ``message`` at once (before the handshake), closes once it is echoed."""

    def __init__(self, message: bytes) -> None:
        super().__init__()
        self.message = message
        self.handshaken = False

    def connectionMade(self) -> None:
        self.transport.write(self.message)

    def handshakeCompleted(self) -> None:
        self.handshaken = True

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if len(self.data) == len(self.message):
            self.transport.loseConnection()


def connect(loop: Reactor, run_until: Any, host: str, port: int, p: Any, context: Any) -> Any:
    d = protocol.ClientCreator(loop, lambda: p).connectSSL(host, port, context)
    return run_until(d)


def test_echo_with_a_verified_certificate(loop: Reactor, run_until: Any, server_context: Any,
                                          client_context: Any) -> None:
    factory = EchoFactory()
    port = loop.listenSSL(0, factory, server_context, interface="127.0.0.1")
    message = bytes(range(256)) * 4096  # 1 MiB: many records, the send buffer fills
    talker = Talker(message)
    connect(loop, run_until, "localhost", port.getHost().port, talker, client_context)
    assert run_until(talker.done, timeout=30) == message
    assert talker.reason.check(error.ConnectionDone)
    assert talker.handshaken and factory.handshakes == 1
    transport = talker.transport
    assert isinstance(transport, tls.TLSConnection)
    assert transport.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    assert transport.getPeerCertificate()["subject"] == ((("commonName", "localhost"),),)
    assert transport.bytes_out > len(message)  # counted on the wire: records and handshake
    port.stopListening()


def test_a_certificate_that_does_not_verify_ends_both_sides(loop: Reactor, run_until: Any,
                                                            server_context: Any) -> None:
    factory = EchoFactory()
    port = loop.listenSSL(0, factory, server_context, interface="127.0.0.1")
    talker = Talker(b"never sent")
    connect(loop, run_until, "localhost", port.getHost().port, talker,
            ssl.create_default_context())  # the system's CAs do not know our certificate
    run_until(talker.done)
    assert talker.reason.check(ssl.SSLCertVerificationError)
    # The client's alert reached the server, which ends with the TLS error too.
    assert issubclass(run_until(factory.first_lost), ssl.SSLError)
    port.stopListening()


def test_lose_connection_before_the_handshake_with_nothing_written_aborts(
        loop: Reactor, run_until: Any, server_context: Any, client_context: Any) -> None:
    port = loop.listenSSL(0, EchoFactory(), server_context, interface="127.0.0.1")

    class Quitter(Collect):
        def connectionMade(self) -> None:
            self.transport.loseConnection()

    quitter = Quitter()
    connect(loop, run_until, "localhost", port.getHost().port, quitter, client_context)
    run_until(quitter.done)
    assert quitter.reason.check(error.ConnectionAborted)
    port.stopListening()


def test_the_hostname_is_checked(loop: Reactor, run_until: Any, server_context: Any,
                                 client_context: Any) -> None:
    port = loop.listenSSL(0, EchoFactory(), server_context, interface="127.0.0.1")
    talker = Talker(b"x")
    connect(loop, run_until, "127.0.0.1", port.getHost().port, talker, client_context)
    run_until(talker.done)
    assert talker.reason.check(ssl.SSLCertVerificationError)
    assert "127.0.0.1" in str(talker.reason.value)
    port.stopListening()


class Goodbye(protocol.Protocol):
    """Sends a greeting and closes: with close_notify, or (``truncate``) by
    closing TCP under TLS's feet."""

    truncate = False

    def connectionMade(self) -> None:
        self.transport.write(b"bye")

    def handshakeCompleted(self) -> None:
        if self.truncate:
            tcp.Connection.loseConnection(self.transport)  # TCP's own: no close_notify
        else:
            self.transport.loseConnection()


def test_close_notify_then_close_is_clean_and_truncation_is_not(
        loop: Reactor, run_until: Any, server_context: Any, client_context: Any) -> None:
    for truncate, expected in ((False, error.ConnectionDone), (True, error.ConnectionLost)):
        factory = protocol.Factory.forProtocol(Goodbye)
        Goodbye.truncate = truncate
        port = loop.listenSSL(0, factory, server_context, interface="127.0.0.1")
        reader = Collect()
        connect(loop, run_until, "localhost", port.getHost().port, reader, client_context)
        assert run_until(reader.done) == b"bye"
        assert reader.reason.check(expected) is expected, (truncate, reader.reason)
        if truncate:
            assert not reader.reason.check(error.ConnectionDone)
        port.stopListening()
    Goodbye.truncate = False


def test_close_notify_against_python_ssl(loop: Reactor, run_until: Any, server_context: Any,
                                         client_context: Any) -> None:
    """An independent TLS stack (the ssl module's blocking sockets) sees our
    close_notify, and ours sees its."""
    factory = protocol.Factory.forProtocol(Goodbye)
    port = loop.listenSSL(0, factory, server_context, interface="127.0.0.1")
    number = port.getHost().port

    def client_sees_clean_end() -> bytes:
        with socket.create_connection(("127.0.0.1", number)) as raw:
            with client_context.wrap_socket(raw, server_hostname="localhost") as s:
                received = b""
                while True:
                    chunk = s.recv(100)  # SSLEOFError if the end came without close_notify
                    if not chunk:
                        return received
                    received += chunk

    assert run_until(deferToThreadPool(loop, loop.getThreadPool(), client_sees_clean_end)) == b"bye"

    echo = EchoFactory()
    port2 = loop.listenSSL(0, echo, server_context, interface="127.0.0.1")

    def client_says_goodbye() -> bytes:
        with socket.create_connection(("127.0.0.1", port2.getHost().port)) as raw:
            s = client_context.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"ping")
            answer = s.recv(100)
            s.unwrap()  # sends close_notify, waits for ours
            return answer

    assert run_until(deferToThreadPool(loop, loop.getThreadPool(), client_says_goodbye)) == b"ping"
    assert run_until(echo.first_lost) is error.ConnectionDone
    port.stopListening()
    port2.stopListening()


class StartTLSServer(basic.LineReceiver):
    def lineReceived(self, line: bytes) -> None:
        if line == b"STARTTLS":
            self.sendLine(b"GO")  # in the clear, then TLS from here
            self.transport.startTLS(self.factory.context)
        else:
            self.sendLine(b"secret: " + line)


class StartTLSClient(basic.LineReceiver):
    def __init__(self, context: Any) -> None:
        self.context = context
        self.lines: list[bytes] = []
        self.done = defer.Deferred()

    def connectionMade(self) -> None:
        self.sendLine(b"STARTTLS")

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"GO":
            self.transport.startTLS(self.context)
            self.sendLine(b"hello")
        else:
            self.done.callback(self.transport)


def test_start_tls_upgrades_a_plain_connection(loop: Reactor, run_until: Any,
                                               server_context: Any, client_context: Any,
                                               tmp_path: Any) -> None:
    factory = protocol.Factory.forProtocol(StartTLSServer)
    factory.context = server_context
    port = loop.listenTCP(0, factory, interface="127.0.0.1")
    client = StartTLSClient(client_context)
    run_until(endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(loop, "localhost", port.getHost().port), client))
    transport = run_until(client.done)
    assert client.lines == [b"GO", b"secret: hello"]
    assert isinstance(transport, tls.TLSConnection) and transport.ssl_object.version()
    with pytest.raises(RuntimeError):
        transport.startTLS(client_context)
    transport.loseConnection()
    port.stopListening()
    # Over a Unix socket too (the hostname checked is then the connector's path:
    # turn the check off for this one).
    unix_client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unix_client_context.check_hostname = False
    unix_client_context.verify_mode = ssl.CERT_NONE
    path = str(tmp_path / "s")
    uport = loop.listenUNIX(path, factory)
    uclient = StartTLSClient(unix_client_context)
    run_until(endpoints.connectProtocol(endpoints.UNIXClientEndpoint(loop, path), uclient))
    utransport = run_until(uclient.done)
    assert uclient.lines == [b"GO", b"secret: hello"]
    assert type(utransport).__name__ == "TLSConnection" and isinstance(utransport, tls.TLSMixin)
    utransport.loseConnection()
    uport.stopListening()


def test_context_factories_and_bad_contexts(loop: Reactor, run_until: Any, server_context: Any,
                                            client_context: Any) -> None:
    class ContextFactory:
        def __init__(self, context: ssl.SSLContext) -> None:
            self.context = context

        def getContext(self) -> ssl.SSLContext:
            return self.context

    port = loop.listenSSL(0, EchoFactory(), ContextFactory(server_context),
                          interface="127.0.0.1")
    talker = Talker(b"via getContext")
    connect(loop, run_until, "localhost", port.getHost().port, talker,
            ContextFactory(client_context))
    assert run_until(talker.done) == b"via getContext"
    with pytest.raises(TypeError, match="server needs"):
        loop.listenSSL(0, EchoFactory(), None)
    with pytest.raises(TypeError, match="pyOpenSSL"):
        loop.listenSSL(0, EchoFactory(), ContextFactory("not a context"))
    with pytest.raises(TypeError):
        loop.connectSSL("localhost", 1, protocol.ClientFactory(), object())
    port.stopListening()


def test_ssl_endpoint_strings(loop: Reactor, run_until: Any, certs: Path) -> None:
    key = endpoints.quoteStringArgument(str(certs / "key.pem"))
    cert = endpoints.quoteStringArgument(str(certs / "cert.pem"))
    server = endpoints.serverFromString(
        loop, f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1")
    assert isinstance(server, endpoints.SSL4ServerEndpoint)
    port = run_until(server.listen(EchoFactory()))
    cas = endpoints.quoteStringArgument(str(certs))
    client = endpoints.clientFromString(
        loop, f"ssl:localhost:{port.getHost().port}:caCertsDir={cas}:timeout=5")
    assert isinstance(client, endpoints.SSL4ClientEndpoint)
    talker = Talker(b"endpoint strings")
    run_until(endpoints.connectProtocol(client, talker))
    assert run_until(talker.done) == b"endpoint strings"
    assert talker.reason.check(error.ConnectionDone)
    with pytest.raises(ValueError, match="dhParameters"):
        endpoints.serverFromString(loop, f"ssl:0:privateKey={key}:dhParameters=x")
    port.stopListening()


def test_default_openssl_context_factory_serves_from_key_and_certificate_files(
        loop: Reactor, run_until: Any, certs: Path, client_context: Any, tmp_path: Path) -> None:
    """``ssl.DefaultOpenSSLContextFactory(key, cert)``, as Twisted servers
    write it, on the standard ssl module; a bad file fails at once."""
    from reactor import ssl as reactor_ssl

    factory = EchoFactory()
    context_factory = reactor_ssl.DefaultOpenSSLContextFactory(
        str(certs / "key.pem"), str(certs / "cert.pem"))
    port = loop.listenSSL(0, factory, context_factory, interface="127.0.0.1")
    assert str(port.getHost().port) in str(port)
    talker = Talker(b"hello over TLS")
    connect(loop, run_until, "localhost", port.getHost().port, talker, client_context)
    assert run_until(talker.done) == b"hello over TLS"
    port.stopListening()
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(ssl.SSLError):
        reactor_ssl.DefaultOpenSSLContextFactory(str(tmp_path / "empty.pem"),
                                                 str(tmp_path / "empty.pem"))
    with pytest.raises(FileNotFoundError):
        reactor_ssl.DefaultOpenSSLContextFactory("no-such-key.pem", "no-such-cert.pem")
