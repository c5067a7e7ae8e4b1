"""The TCP examples, run as a user would: python examples/NAME.py."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from terminal_signals import with_sigint

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

pytestmark = pytest.mark.timeout(40)


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "examples" / name), *args]


def test_poetry_client_downloads_all_poems_at_once_and_reports_the_refused_one() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from poetry_client import POEMS
    finally:
        sys.path.remove(str(ROOT / "examples"))
    done = subprocess.run(example("poetry_client.py"), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"Failed to connect to: IPv4Address\(type='TCP', host='127\.0\.0\.1', "
                        r"port=\d+\): Connection was refused by other side: .*\.", lines[0])
    progress = [re.fullmatch(r"Task (\d): got (\d+) bytes of poetry from "
                             r"IPv4Address\(type='TCP', host='127\.0\.0\.1', port=\d+\)", line)
                for line in lines[1:-4]]
    assert all(progress), lines
    tasks = [int(m.group(1)) for m in progress]
    # The downloads progress together: task 2 is heard from before task 1 is done.
    assert tasks.index(2) < len(tasks) - 1 - tasks[::-1].index(1)
    received = {t: sum(int(m.group(2)) for m in progress if int(m.group(1)) == t) for t in (1, 2, 3)}
    summary = lines[-4:-1]
    titles = [p.split(b"\n", 1)[0].decode() for p in POEMS]
    expected = {f"{len(p)} bytes of poetry: {title}" for p, title in zip(POEMS, titles)}
    assert {line.split(": ", 1)[1] for line in summary} == expected
    for line in summary:
        task, size = re.fullmatch(r"Task (\d): (\d+) bytes.*", line).groups()
        assert received[int(task)] == int(size)
    assert re.fullmatch(r"Got 3 poems and 1 failures in \d+\.\d seconds", lines[-1])


def test_poetry_client_rejects_arguments() -> None:
    done = subprocess.run(example("poetry_client.py", "x"), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "usage" in done.stderr


def test_echo_server_echoes_and_stops_on_sigint() -> None:
    server = subprocess.Popen(with_sigint(example("echo_server.py", "0")), cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        port = int(re.fullmatch(r"echo server listening on 127\.0\.0\.1:(\d+)\n", first).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            message = b"hello, echo\n" * 1000
            conn.sendall(message)
            conn.shutdown(socket.SHUT_WR)
            echoed = bytearray()
            while chunk := conn.recv(65536):
                echoed += chunk
        assert echoed == message
        assert server.stdout.readline().startswith("connection from IPv4Address(type='TCP'")
        assert "left: Connection was closed cleanly" in server.stdout.readline()
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert out == "echo server stopped\n" and err == ""


@pytest.mark.parametrize("args, message", [
    (["http"], "PORT must be a number from 0 to 65535, not 'http'"),
    (["70000"], "PORT must be a number from 0 to 65535, not '70000'"),
    (["1", "2"], "usage: python examples/echo_server.py [PORT]"),
])
def test_echo_server_bad_arguments(args: list[str], message: str) -> None:
    done = subprocess.run(example("echo_server.py", *args), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"echo_server: {message}\n"


def test_echo_server_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(example("echo_server.py", str(port)), cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"echo_server: Couldn't listen on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1
