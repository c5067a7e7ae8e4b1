"""Fuzzing every reader path with traces built from the trace grammar (tracer/format.py).

Every kind with every field, values of the right type and of wrong ones, huge and negative
numbers, missing fields, unknown kinds and fields, ids that no line defines, compact rows of
the right and wrong lengths, lines that are not JSON.  Whatever the file holds, the reader,
the model (load and ``state_at``), summary (JSON and text), the Chrome export and the OTLP
export must not raise (a damaged header is a TraceError, the CLI's one-line error), and what
the exports write must parse.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer import format as fmt
from tracer import otlp
from tracer.export import export_chrome
from tracer.model import TraceModel
from tracer.reader import TraceError, read_trace
from tracer.summary import format_text, summarize

#: Integers a trace may hold: small ones (so ids refer to each other), and the extremes.
INTS = st.one_of(st.integers(-3, 12), st.integers(fmt.INT_MIN, fmt.INT_MAX),
                 st.sampled_from([fmt.INT_MIN, fmt.INT_MAX, -1, 0, 1 << 53]))
#: Text with the characters that must never reach a terminal raw.
SPECIAL = st.sampled_from("\x1b\x07\r\n\t\u202e\u2066\u200b\ufeff[]/@")
TEXT = st.text(st.one_of(SPECIAL, SPECIAL, st.characters()), min_size=1, max_size=8)
NUMBERS = st.one_of(INTS, st.floats(allow_nan=False, allow_infinity=False))

#: A strategy of right-typed values for each field type of tracer.format.
VALID = {
    fmt.is_int: INTS, fmt.is_bool: st.booleans(), fmt.is_str: TEXT, fmt.is_number: NUMBERS,
    fmt.is_int_or_null: st.one_of(st.none(), INTS), fmt.is_str_or_null: st.one_of(st.none(), TEXT),
    fmt.is_stack: st.lists(st.tuples(TEXT, INTS, TEXT).map(list), max_size=3),
    fmt.is_ready: st.lists(st.tuples(INTS, INTS).map(list), max_size=3),
    fmt.is_str_list: st.lists(TEXT, max_size=3),
    fmt.is_wall_time: st.floats(0, 9.9e9), fmt.is_threshold: st.floats(0.001, 86_400_000),
}
#: Values of any JSON type, for fields that get the wrong one.
WRONG = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                  TEXT, st.integers(1 << 63, 1 << 70), st.integers(-(1 << 70), -(1 << 63) - 1),
                  st.lists(st.integers(), max_size=3), st.dictionaries(TEXT, st.integers(), max_size=2))


def dumps(value: object) -> bytes:
    """JSON as a writer might write it, integers past 64 bits included (orjson refuses them)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def fields(draw, spec: fmt.Fields, damage: int = 10) -> dict:
    """The fields of ``spec``: each one right, or, ``damage`` times in a hundred, of a wrong
    type or missing."""
    out = {}
    for name, (check, _required) in spec.items():
        choice = draw(st.integers(0, 99))
        if choice >= damage:
            out[name] = draw(VALID[check])
        elif choice < damage // 2:
            out[name] = draw(WRONG)
    if draw(st.integers(0, 9)) == 0:
        out[draw(TEXT)] = draw(WRONG)  # a field this version does not know
    return out


JUNK = st.sampled_from([b"{not json", b"", b"[]", b"null", b"[1,2]", b'"x"', b'{"ev":"call"}',
                        b'["poll",1]', b"\xff\xfe", b'{"ev":"trace","v":1}'])


@st.composite
def event_line(draw, kind: str) -> bytes:
    """An event of ``kind``, as an object or (for the kinds that have one) a compact row."""
    event = draw(fields(fmt.KINDS.get(kind, {})))
    event["ev"] = kind
    event["t"] = draw(INTS) if draw(st.integers(0, 9)) else draw(WRONG)
    if kind in fmt.ROWS and draw(st.booleans()):
        names = fmt.ROWS[kind]
        row = [kind, event["t"]]
        for name in names[1:]:
            row.append(event.get(name, draw(st.one_of(st.none(), INTS))))
        if kind == "poll":
            for pair in event.get("ready") if type(event.get("ready")) is list else []:
                row.extend(pair if type(pair) is list else [pair])
        if draw(st.integers(0, 9)) == 0:
            row = row[:draw(st.integers(0, len(row)))]  # a row of the wrong length
        return dumps(row)
    return dumps(event)


@st.composite
def trace_file(draw) -> bytes:
    """A header (now and then a damaged one), then up to two events of every kind and of
    unknown kinds, and junk lines, in any order."""
    header = draw(fields(fmt.HEADER, damage=2))
    header["ev"] = "trace"
    header["v"] = draw(st.sampled_from([1] * 20 + [True, 2, "1", 1.0]))
    kinds = sorted(fmt.KINDS) + draw(st.lists(TEXT, max_size=2))
    lines = [draw(event_line(kind)) for kind in kinds for _ in range(draw(st.integers(0, 2)))]
    lines += draw(st.lists(JUNK, max_size=2))
    draw(st.randoms(use_true_random=False)).shuffle(lines)
    ending = draw(st.sampled_from([b"\n", b"", b'\n{"t":1,"ev":"ma']))  # whole or cut short
    return b"\n".join([dumps(header)] + lines) + ending


def check_every_reader(data: bytes) -> None:
    warnings: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "t.jsonl")
        Path(path).write_bytes(data)
        try:
            _header, events = read_trace(path, warnings.append)
        except TraceError:
            return  # a damaged header: the CLI prints this one sentence
        list(events)
        model = TraceModel.load(path, warn=warnings.append)
        for i in sorted({0, len(model) // 2, len(model)}):
            model.state_at(i)
        for i in range(len(model)):
            model.event(i), model.kind(i), model.time_ns(i)
        summary = summarize(path, warn=warnings.append)
        orjson.loads(orjson.dumps(summary))
        assert "\x1b" not in format_text(summary) and "\u202e" not in format_text(summary)
        chrome = io.BytesIO()
        export_chrome(path, chrome, warn=warnings.append)
        assert isinstance(orjson.loads(chrome.getvalue())["traceEvents"], list)
        traces, metrics = otlp.build(path, span_over_ms=0.001, warn=warnings.append)
        json_lines = io.BytesIO()
        otlp.write_json(traces, metrics, json_lines)
        for line in json_lines.getvalue().splitlines():
            orjson.loads(line)
        for request in traces:
            otlp.encode("ExportTraceServiceRequest", request)
        otlp.encode("ExportMetricsServiceRequest", metrics)


# A fixed budget, about 20 s (building an example costs far more than reading it; each holds
# every kind), and no deadline: examples are not timed one by one on a shared machine.  At a
# load of 4 on 2 cores the budget took more than the suite's 120 s timeout.
@pytest.mark.timeout(600)
@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(trace_file())
def test_no_trace_makes_a_reader_raise(data: bytes) -> None:
    check_every_reader(data)


@pytest.mark.parametrize("line", [
    b'{"t":-9223372036854775808,"ev":"call","kind":"timer","site":1,"dur":9223372036854775807,'
    b'"depth":-1,"timer":9223372036854775807,"lag":-5}',
    b'["timer",9223372036854775807,9223372036854775807,1,2,9223372036854775807]',
    b'{"t":5,"ev":"loop","dt":0,"it":-1,"busy":9223372036854775807,"idle":0,"calls":0,'
    b'"lag_max":9223372036854775807,"lag_mean":0}',
    b'{"t":5,"ev":"tstart","job":1,"tid":9223372036854775807}',
    b'{"t":0,"ev":"loop","dt":0,"it":-1,"busy":0,"idle":0,"calls":0,"lag_max":0,"lag_mean":0}\n'
    b'{"t":0,"ev":"loop","dt":0,"it":-9223372036854775808,"busy":0,"idle":0,"calls":0,'
    b'"lag_max":0,"lag_mean":0}',
    b'\n'.join(b'{"t":%d,"ev":"loop","dt":1,"it":9223372036854775807,"busy":0,"idle":0,'
               b'"calls":0,"lag_max":0,"lag_mean":0}' % t for t in range(3)),
])
def test_extreme_values_found_by_the_fuzzer(line: bytes) -> None:
    check_every_reader(b'{"ev":"trace","v":1,"start_wall":9999999999.0}\n'
                       b'{"t":1,"ev":"tsub","job":1,"fn":1}\n' + line + b"\n")
