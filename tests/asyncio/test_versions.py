"""The traced copies of asyncio's methods behave as the Python's own, on each version
(3.11 to 3.14 differ), and an asyncio of a shape the adapter does not know is not patched."""

from __future__ import annotations

import subprocess
import sys

from asyncio_support import ENV, PROGRAMS, events


def run_child(code: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


#: The same checks untraced and traced: each prints what the loop did.
BEHAVIOUR = '''
import asyncio, threading

def threadsafe_handle_class():
    loop = asyncio.new_event_loop()
    try:
        mro = type(loop.call_soon_threadsafe(print)).__mro__
        return [c.__name__ for c in mro if c.__module__ == "asyncio.events"]
    finally:
        loop.close()

def debug_message():
    messages = []
    def fail():
        raise ValueError("boom")
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: messages.append(context["message"]))
        loop.call_soon(fail)
        await asyncio.sleep(0.01)
    asyncio.run(main(), debug=True)
    return messages[0].split(" created at ")[0]

def factory_task():
    made = []
    def factory(loop, coro):  # a factory of the 3.11 kind: loop and coroutine only
        made.append(1)
        return asyncio.Task(coro, loop=loop)
    async def child():
        return 7
    async def main():
        asyncio.get_running_loop().set_task_factory(factory)
        return await asyncio.get_running_loop().create_task(child())
    return asyncio.run(main()), len(made)

def named_task():
    async def main():
        task = asyncio.get_running_loop().create_task(asyncio.sleep(0), name="named")
        await task
        return task.get_name()
    return asyncio.run(main())

def handles_run():
    """A callback that reads its context and cancels its own handle, a handle run by hand
    (bound, and a plain Handle), SystemExit and KeyboardInterrupt out of a callback."""
    import contextvars
    var = contextvars.ContextVar("var", default="unset")
    seen = []
    async def main():
        loop = asyncio.get_running_loop()
        def own():
            seen.append((var.get(), handle.cancelled()))
            handle.cancel()
            seen.append(handle.cancelled())
        context = contextvars.copy_context()
        context.run(var.set, "its own")
        handle = loop.call_soon(own, context=context)
        twice = loop.call_soon(seen.append, "twice")
        run = twice._run
        run()
        await asyncio.sleep(0.01)
        asyncio.events.Handle(seen.append, ("by hand",), loop)._run()
        seen.append(var.get())
    asyncio.run(main())
    for escaping in (SystemExit, KeyboardInterrupt):
        loop = asyncio.new_event_loop()
        def leave():
            raise escaping(3)
        loop.call_soon(leave)
        try:
            loop.run_forever()
        except escaping as exc:
            seen.append(f"{type(exc).__name__} {exc}")
        finally:
            loop.close()
    return seen

def results():
    return [threadsafe_handle_class(), debug_message(), factory_task(), named_task(),
            handles_run()]
'''


def test_traced_loops_behave_as_the_pythons_own(tmp_path):
    code = BEHAVIOUR + f'''
untraced = results()
import tracer
from tracer import adapters
from asyncio import events
original = events.Handle._run
adapters.install(tracer.start({str(tmp_path / "t.jsonl")!r}))
assert events.Handle._run is not original  # really traced
import importlib.util
if importlib.util.find_spec("tracer._native"):  # by the C probe's HandleRunner
    assert type(vars(events.Handle)["_run"]).__name__ == "HandleRunner"
traced = results()
adapters.uninstall()
tracer.stop()
print(repr(untraced))
print(repr(traced))
'''
    untraced, traced = run_child(code).stdout.splitlines()
    assert traced == untraced
    assert "Exception in callback" in untraced and "(7, " in untraced and "'named'" in untraced
    assert "['twice', ('its own', False), True, 'twice', 'by hand', 'unset', 'SystemExit 3', "\
           "'KeyboardInterrupt 3']" in untraced


def test_an_asyncio_the_adapter_does_not_know_is_left_alone_with_a_warning(tmp_path):
    trace = tmp_path / "t.jsonl"
    code = f'''
import sys
from asyncio import base_events, events
original = base_events.BaseEventLoop.call_soon

def call_soon(self, callback, *args, context=None):  # a Python whose call_soon changed
    self._soon_count = getattr(self, "_soon_count", 0) + 1
    return original(self, callback, *args, context=context)

base_events.BaseEventLoop.call_soon = call_soon
run = events.Handle._run
from loopscope import cli
code = cli.main(["run", "-o", {str(trace)!r}, {str(PROGRAMS / "echo_streams.py")!r}, "3"])
assert events.Handle._run is run and base_events.BaseEventLoop.call_soon is call_soon
sys.exit(code)
'''
    proc = run_child(code)
    assert ("loopscope: warning: asyncio is not traced: this Python's asyncio "
            "BaseEventLoop.call_soon is not the one") in proc.stderr
    kinds = {e["ev"] for e in events(trace)}
    assert "end" in kinds and "runtime" not in kinds  # traced, but not the asyncio loop
