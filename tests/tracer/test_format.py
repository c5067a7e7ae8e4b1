"""tracer.format is the one definition of the trace format: the C writer, the docs and the
readers agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracer import format as fmt

ROOT = Path(__file__).resolve().parents[2]


def c_writer_rows() -> dict[str, str]:
    """Each row kind the C writer writes, with its field type letters (``ROWS[]`` in _native.c)."""
    source = (ROOT / "tracer" / "_native.c").read_text()
    rows = re.findall(r'\[ROW_\w+\]\s*=\s*ROW\("\[\\"(\w+)\\",",\s*"(\w+)",\s*"([^"]*)"\)', source)
    assert rows, "the ROWS table was not found in tracer/_native.c"
    table = {}
    for kind, types, close in rows:
        # The C writer closes a call row with a literal null: the ``exc`` field.
        table[kind] = types + ("i" if close == ",null]" else "")
    return table


def test_the_c_writer_writes_the_rows_the_format_defines():
    c_rows = c_writer_rows()
    assert set(c_rows) == set(fmt.ROWS) == set(fmt.ROW_TYPES)
    for kind, fields in fmt.ROWS.items():
        written = fmt.ROW_TYPES[kind] + ("i" if kind == "call" else "")
        assert c_rows[kind] == written, kind
        if kind != "poll":  # a poll row carries its ready pairs after the fixed fields
            assert len(c_rows[kind]) == len(fields), kind


def test_every_row_field_is_a_field_of_its_kind():
    for kind, fields in fmt.ROWS.items():
        known = set(fmt.KINDS[kind]) | {"t", "x"} | ({"ready"} if kind == "poll" else set())
        assert set(fields) <= known, kind


def test_the_docs_describe_every_kind():
    docs = (ROOT / "docs" / "trace-format.md").read_text()
    missing = [kind for kind in fmt.KINDS if f"`{kind}`" not in docs]
    assert missing == []


@pytest.mark.parametrize("row, event", [
    (["call", 9, "timer", 4, 7, 0, 17, 3, None],
     {"t": 9, "ev": "call", "kind": "timer", "site": 4, "dur": 7, "depth": 0, "timer": 17, "lag": 3}),
    (["dcall", 9, 2, 4, 7, 1, False, True],
     {"t": 9, "ev": "dcall", "d": 2, "site": 4, "dur": 7, "depth": 1, "eb": False, "fail": True}),
    (["timer", 1, 5, 2, 3, None], {"t": 1, "ev": "timer", "id": 5, "site": 2, "fn": 3, "due": None}),
    (["poll", 5, 100], {"t": 5, "ev": "poll", "wait": 100, "ready": []}),
])
def test_rows_decode_to_valid_events(row, event):
    assert fmt.event_from_row(row) == event
    assert fmt.check_event(event) is None


@pytest.mark.parametrize("row", [["call", 1], ["poll", 1, 2, 3], ["nope", 1], [7], []])
def test_malformed_rows_are_refused(row):
    assert fmt.event_from_row(row) is None


@pytest.mark.parametrize("event, problem", [
    ({"t": 1, "ev": "drop", "n": True}, "its 'n' has the wrong type"),
    ({"t": 1.5, "ev": "mark", "label": "x"}, "its 't' is not an integer"),
    ({"t": 1, "ev": "site", "id": 1, "fn": "f", "file": "f.py"}, "it has no 'line'"),
    ({"t": 1, "ev": 3}, "it has no event kind"),
    ([1], "not a JSON object"),
])
def test_wrong_types_are_named(event, problem):
    assert fmt.check_event(event) == problem


def test_unknown_kinds_and_fields_are_valid():
    assert fmt.check_event({"t": 1, "ev": "future-kind", "x": [1]}) is None
    assert fmt.check_event({"t": 1, "ev": "mark", "label": "x", "new": 1}) is None
