"""Fixtures for the tracer tests: the same checks run against both probes.

``probe_impl``  ``"c"`` or ``"python"``, one run of the test per probe: ``LOOPSCOPE_PROBE`` is
                set to it for the whole module, so ``tracer.start`` and the subprocesses a
                test starts use that probe.  The C run is skipped when the extension is not
                built (the suite must pass without it).  A module uses it for every test with
                ``pytestmark = pytest.mark.usefixtures("probe_impl")``.
``probes``      the module of that probe (``tracer._native`` or ``tracer.pyprobe``), for tests
                that build a ``Buffer`` or a ``Probe`` themselves.
``trace_path``  a trace file in the test's directory; recording is stopped afterwards.
``collector``   an OTLP/HTTP receiver on 127.0.0.1: its endpoint, and what it received.
"""

from __future__ import annotations

import http.server
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import tracer
from tracer import backend

PROBES = ["c", "python"]


def c_probe_built() -> bool:
    return importlib.util.find_spec("tracer._native") is not None


@pytest.fixture(scope="module", params=PROBES)
def probe_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "c" and not c_probe_built():
        pytest.skip("the C extension tracer._native is not built")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(backend.ENV, request.param)
        yield request.param


@pytest.fixture
def probes(probe_impl: str) -> ModuleType:
    return backend.probe_module()


@pytest.fixture
def trace_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "t.jsonl"
    tracer.stop()


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes, str]]]]:
    """An OTLP/HTTP receiver: the endpoint, and every (path, body, content type) it got."""
    received: list[tuple[str, bytes, str]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body, self.headers["Content-Type"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
