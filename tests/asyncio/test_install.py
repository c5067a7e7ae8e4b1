"""The adapter patches asyncio only between install and uninstall: importing loopscope
patches nothing, and uninstall puts every attribute back."""

from __future__ import annotations

import subprocess
import sys

from asyncio_support import ENV

#: Everything the adapter could patch, as "module:attribute path" of the namespace.
SNAPSHOT = '''
import asyncio
from asyncio import base_events, events, futures, selector_events, tasks

def snapshot():
    owners = [asyncio, events, futures, tasks, events.Handle, events.TimerHandle,
              base_events.BaseEventLoop, selector_events.BaseSelectorEventLoop,
              selector_events._SelectorTransport, selector_events._SelectorSocketTransport]
    # asyncio's own state, made on first use of asyncio.run
    state = {"_event_loop_policy"}
    return {(repr(o), name): id(value) for o in owners for name, value in vars(o).items()
            if name not in state}
'''


def test_importing_loopscope_patches_nothing():
    code = SNAPSHOT + '''
before = snapshot()
import loopscope, loopscope.cli, tracer, tracer.session, tracer.adapters
import tracer.adapters.asyncio_loop
assert snapshot() == before, sorted(k for k in before if snapshot().get(k) != before[k])
print("unchanged")
'''
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "unchanged"


def test_uninstall_puts_everything_back(tmp_path):
    code = SNAPSHOT + f'''
before = snapshot()
import tracer
from tracer import adapters
adapters.install(tracer.start({str(tmp_path / "t.jsonl")!r}))
patched = sorted(k for k in before if snapshot().get(k) != before[k])
assert ("<class 'asyncio.events.Handle'>", "_run") in patched, patched

async def work():
    await asyncio.sleep(0.01)
    return await asyncio.to_thread(sum, [1, 2])

assert asyncio.run(work()) == 3
adapters.uninstall()
tracer.stop()
assert snapshot() == before, sorted(k for k in before if snapshot().get(k) != before[k])
assert asyncio.run(work()) == 3  # handles made while tracing are harmless afterwards
print(len(patched))
'''
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 10
