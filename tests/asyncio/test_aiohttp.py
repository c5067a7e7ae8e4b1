"""An aiohttp server whose handlers block three ways, traced under load from aiohttp's client."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest

from asyncio_support import PROGRAMS, def_line, events, loopscope_run, marked_lines, summary

PROGRAM = "aiohttp_server.py"
BLOCKING = {"/sleep": "sleepy", "/cpu": "crunch", "/write": "write_file"}


async def load(port_file: Path) -> dict[str, float]:
    """Fast requests, ten at a time, while each blocking handler is called once; returns the
    seconds each blocking handler says it blocked."""
    for _ in range(600):
        if port_file.exists():
            break
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{int(port_file.read_text())}"
    reported: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        async def get(path: str) -> str:
            async with session.get(base + path) as response:
                assert response.status == 200
                return await response.text()

        async def fast() -> None:
            for _ in range(15):
                assert await asyncio.gather(*(get("/") for _ in range(10))) == ["hello"] * 10

        async def blocking() -> None:
            for path in BLOCKING:
                reported[path] = float(await get(path))
                await asyncio.sleep(0.05)

        await asyncio.gather(fast(), blocking())
        await get("/quit")
    return reported


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("aiohttp")
    trace, port_file = tmp / "server.jsonl", tmp / "port"
    proc = loopscope_run(trace, PROGRAM, str(port_file), str(tmp), wait=False)
    try:
        reported = asyncio.run(asyncio.wait_for(load(port_file), 60))
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return trace, reported


@pytest.mark.timeout(120)
def test_each_blocking_handler_is_named_with_its_stuck_line(served):
    trace, reported = served
    rows = summary(trace)["blocking"]
    # (a shared machine may stall the server elsewhere too: only these are asserted)
    for path, name in BLOCKING.items():
        [row] = [r for r in rows if r["fn"] == f"__main__.{name}"]
        assert row["file"] == str(PROGRAMS / PROGRAM)
        assert row["line"] == def_line(PROGRAM, name)
        assert row["kind"] == "task" and row["depth"] == 0
        # The step holds the loop for all the handler measured, and for a little more: the
        # work of the same step before and after the handler's clock (aiohttp's parsing,
        # closing the file, the response), which on a loaded machine was 19 ms for /write
        # (the 10% bound this replaces failed there on Python 3.14).
        handler_ms = 1000 * reported[path]
        assert handler_ms - 1 <= row["dur_ms"] <= handler_ms + max(0.25 * handler_ms, 40)
        stuck = row["stack"][-1]
        assert stuck["file"] == str(PROGRAMS / PROGRAM) and stuck["func"] == name
        assert stuck["line"] in marked_lines(PROGRAM, name)


def test_requests_are_seen_as_reads_task_steps_and_connections(served):
    trace, _ = served
    s = summary(trace)
    by_fn = {c["fn"]: c for c in s["callbacks"]}
    reads = by_fn["aiohttp.web_protocol.RequestHandler.data_received"]
    assert reads["kind"] == "read" and reads["count"] >= 150 + len(BLOCKING) + 1
    # A request's task: its own steps, or where asyncio can start a task eagerly (3.12+, and
    # aiohttp then does) run at once inside the step of RequestHandler.start that read it.
    handler = "_handle_request" if sys.version_info < (3, 12) else "start"
    assert by_fn[f"aiohttp.web_protocol.RequestHandler.{handler}"]["kind"] == "task"
    assert s["loop"]["iterations"] > 0 and 0 < s["loop"]["busy_ratio"] < 1
    assert s["deferreds"]["created"] > 150 and s["deferreds"]["unhandled"] == []
    evs = events(trace)
    runtime = [e for e in evs if e["ev"] == "runtime"]
    assert [e["name"] for e in runtime] == ["asyncio"]
    assert runtime[0]["loop"] == "asyncio.unix_events._UnixSelectorEventLoop"
    conns = [e for e in evs if e["ev"] == "conn"]
    assert conns and all(e["role"] == "server" and e["peer"].startswith("127.0.0.1:") for e in conns)
    closes = [e for e in evs if e["ev"] == "close"]
    assert {e["fd"] for e in closes} <= {e["fd"] for e in conns}
    assert all(e["in"] > 0 and e["out"] > 0 for e in closes)
    assert s["errors"] == []
