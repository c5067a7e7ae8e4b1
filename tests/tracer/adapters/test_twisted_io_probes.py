"""Twisted's reads and writes are named alike by the C probe's dispatcher and by the Python
wrapper the pure-Python probe uses: a port accepting, data for a plain and a wrapped protocol,
a client connecting, a pull producer, an exception escaping dataReceived."""

import collections
import importlib.util
import subprocess
import sys

import pytest
from twisted_support import ENV, app, events

PROGRAM = app("io_paths.py")
PROBES = ["c", "python"] if importlib.util.find_spec("tracer._native") else ["python"]


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """Per probe: the read and write calls, (kind, name, raised) -> how many; the polls."""
    tmp = tmp_path_factory.mktemp("io-paths")
    found = {}
    for probe in PROBES:
        trace = tmp / f"{probe}.jsonl"
        done = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                               str(PROGRAM)], capture_output=True, text=True,
                              env={**ENV, "LOOPSCOPE_PROBE": probe}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "clients done: 4" in done.stdout
        evs = events(trace)
        assert evs[-1]["ev"] == "end" and evs[-1]["hook_errors"] == 0
        io = collections.Counter((e["kind"], e["name"], "exc" in e) for e in evs
                                 if e["ev"] == "call" and e["kind"] in ("read", "write"))
        found[probe] = io, [e for e in evs if e["ev"] == "poll"]
    return found


def test_each_read_and_write_is_named_by_what_it_runs(calls):
    io, _polls = calls[PROBES[0]]
    assert io[("read", "__main__.Echo.dataReceived", False)] == 4  # the wrapped one included
    assert io[("read", "__main__.Echo.dataReceived", True)] == 1
    assert io[("read", "__main__.Client.dataReceived", False)] == 4
    assert io[("read", "twisted.internet.protocol.Factory.buildProtocol", False)] == 1
    assert io[("read", "twisted.protocols.policies.WrappingFactory.buildProtocol", False)] == 1
    assert io[("write", "twisted.internet.tcp.Client.doConnect", False)] == 4
    assert io[("write", "__main__.Chunks.resumeProducing", False)] >= 1
    assert not any(name.endswith("_doReadOrWrite") for _kind, name, _raised in io)


def test_polls_list_the_descriptors_ready_with_their_modes(calls):
    _io, polls = calls[PROBES[0]]
    modes = {mode for poll in polls for _fd, mode in poll["ready"]}
    assert modes <= {1, 2, 3} and {1, 2} <= modes


def test_both_probes_name_them_alike(calls):
    if len(PROBES) == 1:
        pytest.skip("comparing needs the C extension too")
    assert calls["c"][0] == calls["python"][0]
