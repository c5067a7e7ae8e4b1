"""bench/instructions.py leaves the drain at tracer.stop out of the main thread's count: it
reads what the calls to that function cost off callgrind's profile format, where a name is
written once and then referred to by its number, and trailing zero costs are left out."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import instructions  # noqa: E402  (bench/ is not a package)

# The shape of a callgrind profile (events Ir and I1mr), cut down: Buffer_drain is named where
# its own body starts, then called twice by number, once with its I1mr cost left out (zero).
PROFILE = """\
# callgrind format
version: 1
positions: line
events: Ir I1mr
summary: 10000 70

fn=(1) method_vectorcall_O
15 40 1
cfn=(2) Buffer_drain
calls=1 +10
* 600 5
cfn=(3) Buffer_line
calls=4 +2
* 80 1

fn=(2)
500 500 4
cfn=(4) write_lines
calls=1 0
* 100 1

fn=(5) slot_tp_call
3 9
cfn=(2)
calls=1 -4
* 250
"""


def test_the_calls_to_a_function_cost_what_their_lines_say() -> None:
    assert instructions.calls_cost(PROFILE, "Buffer_drain", 2) == [850, 5]


def test_a_function_never_called_costs_nothing() -> None:
    assert instructions.calls_cost(PROFILE, "Buffer_take_lags", 2) == [0, 0]
    # A function's own body (fn=) is not a call to it: write_lines is called once, from there.
    assert instructions.calls_cost(PROFILE, "write_lines", 2) == [100, 1]
