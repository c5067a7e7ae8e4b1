"""The sample traces in traces/ look like what the recorder writes today (traces/README.md).

Each sample's program is recorded again (the demo for a shorter time) and compared: every event
kind the fresh trace has, with every field it has, and every site of the app's own code named
the way the recorder names it now, must be in the sample too.  A sample recorded before a change
to the recorder (a new field, the naming of inherited methods) fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracer.names import is_user_file
from tracer.reader import read_trace

ROOT = Path(__file__).resolve().parents[2]
#: Each sample and the program that records it (traces/README.md); the demo runs 4.5 s here,
#: long enough for each of its misbehaviours but the last ones.
SAMPLES = {
    "demo.jsonl": ["-m", "tracer.demo", "4.5"],
    "blocking_server.jsonl": ["examples/blocking_server.py"],
}


def shape(path: Path) -> tuple[dict[str, set[str]], set[str]]:
    """The fields seen per event kind, and the names of the sites in the app's own files."""
    _, events = read_trace(str(path))
    fields: dict[str, set[str]] = {}
    names = set()
    for event in events:
        fields.setdefault(event["ev"], set()).update(event)
        if event["ev"] == "site" and is_user_file(event["file"]):
            names.add(event["fn"])
    return fields, names


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_sample_is_what_the_recorder_writes_today(sample: str, tmp_path: Path) -> None:
    fresh = tmp_path / sample
    proc = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(fresh),
                           *SAMPLES[sample]], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    now_fields, now_names = shape(fresh)
    old_fields, old_names = shape(ROOT / "traces" / sample)
    for kind, fields in now_fields.items():
        assert kind in old_fields, f"{sample} has no {kind!r} events: record it again"
        assert fields <= old_fields[kind], \
            f"{sample}'s {kind!r} events lack {fields - old_fields[kind]}: record it again"
    assert now_names <= old_names, \
        f"{sample} names sites differently ({now_names - old_names}): record it again"
