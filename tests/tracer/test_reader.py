"""The reader and the CLI on damaged and foreign files: one clear sentence, never a traceback."""

import subprocess
import sys

import orjson
import pytest

from loopscope.cli import main
from tracer.reader import Follower, read_trace

HEADER = b'{"ev":"trace","v":1,"pid":1,"argv":["x"],"python":"3.11","start_wall":0,"threshold_ms":50.0,"clock":"monotonic"}\n'
EVENTS = [
    {"t": 10, "ev": "site", "id": 1, "fn": "m.f", "file": "m.py", "line": 3},
    {"t": 90_000_000, "ev": "call", "kind": "timer", "site": 1, "dur": 80_000_000, "depth": 0, "timer": 1, "lag": 5},
]


def lines(*events):
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def write(tmp_path, data: bytes, name="t.jsonl"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("data, message", [
    (b"hello, this is not json\nat all\n", "is not a loopscope trace"),
    (b"", "is empty, not a trace"),
    (b'{"ev":"trace","v":2}\n' + lines(*EVENTS), "is trace format version 2; this loopscope reads version 1"),
    (b"x" * (10 << 20) + b"\n", "is not a loopscope trace"),
    (b"\xff\xfe\x00garbage\x80\n", "is not a loopscope trace"),
    (b'{"ev":"call","t":1}\n', "is not a loopscope trace"),
])
def test_foreign_files_are_refused_with_one_sentence(tmp_path, capsys, data, message):
    path = write(tmp_path, data)
    assert main(["summary", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loopscope: error: ")
    assert message in err and "Traceback" not in err


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope.jsonl")]) == 2
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    # a directory is read as a trace folder: this one holds no trace
    assert "does not exist" in err and f"{tmp_path} holds no loopscope trace" in err


@pytest.mark.parametrize("bad, warning", [
    (b"{not json\n", "line 3 is not valid JSON; skipped"),
    (b"y" * (10 << 20) + b"\n", "line 3 is not valid JSON; skipped"),  # read: under MAX_LINE
    (b'{"t":5,"ev":"mark","label":"\xff\xfe"}\n', "line 3 is not valid JSON; skipped"),
    (b"[1,2,3]\n", "line 3 is not a trace event (not a well-formed compact row); skipped"),
    (b'["call",5,"timer",1,"slow",0,null,null,null]\n',
     "line 3 is not a trace event (its 'dur' has the wrong type); skipped"),
    (b'{"t":5,"ev":"stall","site":1,"kind":"read","depth":0,"since":1,"blocked":4,"stack":[[1,2]]}\n',
     "line 3 is not a trace event (its 'stack' has the wrong type); skipped"),
    (b'{"t":true,"ev":"mark","label":"x"}\n', "line 3 is not a trace event (its 't' is not an integer); skipped"),
    (b'{"t":5,"ev":"drop"}\n', "line 3 is not a trace event (it has no 'n'); skipped"),
])
def test_a_bad_line_is_skipped_with_its_number(tmp_path, capsys, bad, warning):
    path = write(tmp_path, HEADER + lines(EVENTS[0]) + bad + lines(EVENTS[1]))
    assert main(["summary", "--json", path]) == 0
    out, err = capsys.readouterr()
    assert warning in err
    summary = orjson.loads(out)
    assert [b["fn"] for b in summary["blocking"]] == ["m.f"]


def test_partial_last_line_is_ignored(tmp_path):
    whole = lines(*EVENTS)
    path = write(tmp_path, HEADER + whole + b'{"t":95000000,"ev":"ma')
    header, events = read_trace(path, warn=pytest.fail)
    assert header["v"] == 1
    assert [e["ev"] for e in events] == ["site", "call"]


def test_no_traceback_from_the_console_entry_point(tmp_path):
    path = write(tmp_path, b"\x00\x01 binary junk")
    proc = subprocess.run([sys.executable, "-m", "loopscope", "summary", path], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("loopscope: error: ") and "Traceback" not in proc.stderr


def test_follower_yields_events_as_they_are_appended(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_bytes(b"")
    with Follower(str(path), warn=pytest.fail) as follower, open(path, "ab", buffering=0) as f:
        assert follower.poll() == [] and follower.header is None
        f.write(HEADER[:20])
        assert follower.poll() == [] and follower.header is None
        f.write(HEADER[20:] + lines(EVENTS[0]))
        assert [e["ev"] for e, _ in follower.poll()] == ["site"]
        assert follower.header["v"] == 1
        second = lines(EVENTS[1])
        f.write(second[:15])
        assert follower.poll() == []
        f.write(second[15:])
        assert follower.poll() == [(EVENTS[1], second.rstrip(b"\n"))]  # the line as read
        assert follower.poll() == []


def test_follower_refuses_a_non_trace(tmp_path):
    path = write(tmp_path, b"just some text\n")
    from tracer.reader import TraceError
    with Follower(path) as follower, pytest.raises(TraceError, match="not a loopscope trace"):
        follower.poll()


def test_follower_waits_for_the_file_and_reads_in_bounded_chunks(tmp_path):
    path = tmp_path / "later.jsonl"
    with Follower(str(path), warn=pytest.fail, wait=True) as follower:
        assert follower.poll() == [] and follower.size() == 0
        data = HEADER + lines(*EVENTS) * 50
        path.write_bytes(data)
        got = []
        while follower.offset < len(data):
            got += [event for event, _ in follower.poll(max_bytes=300)]
        assert follower.offset == follower.size() == len(data)
        assert got == EVENTS * 50


def test_read_header(tmp_path):
    from tracer.reader import TraceError, read_header
    assert read_header(write(tmp_path, HEADER))["pid"] == 1
    with pytest.raises(TraceError, match="is empty"):
        read_header(write(tmp_path, b"", "empty.jsonl"))


def test_compact_rows_decode_to_the_object_form(tmp_path, capsys):
    from tracer.reader import decode
    assert decode(b'["call",9,"timer",4,7,0,17,3,null]') == {
        "t": 9, "ev": "call", "kind": "timer", "site": 4, "dur": 7, "depth": 0, "timer": 17, "lag": 3}
    assert decode(b'["call",9,"read",4,7,1,6,null,"ValueError"]') == {
        "t": 9, "ev": "call", "kind": "read", "site": 4, "dur": 7, "depth": 1, "fd": 6, "exc": "ValueError"}
    assert decode(b'["poll",5,100,6,1,7,2]') == {"t": 5, "ev": "poll", "wait": 100, "ready": [[6, 1], [7, 2]]}
    assert decode(b'["dadd",5,1,2,0]') == {"t": 5, "ev": "dadd", "d": 1, "cb": 2, "eb": 0}
    path = write(tmp_path, HEADER + b'["dfire",5]\n[["x"]]\n[]\n' + lines(*EVENTS))
    assert main(["summary", "--json", path]) == 0
    err = capsys.readouterr().err
    assert all(f"line {n} is not a trace event (not a well-formed compact row); skipped" in err
               for n in (2, 3, 4))
