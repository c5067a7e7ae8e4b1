"""An aiohttp server whose handlers block the loop three ways, for the asyncio adapter's tests.

    python aiohttp_server.py PORT_FILE [SCRATCH_DIR]

Listens on 127.0.0.1 (a free port, written to PORT_FILE), answers ``/`` at once and blocks
in ``/sleep`` (time.sleep), ``/cpu`` (a busy loop) and ``/write`` (synchronous file writes,
flushed to disk); each blocking handler answers with the seconds it blocked, as it measured
them.  ``/quit`` stops it.
"""

import asyncio
import os
import sys
import tempfile
import time

from aiohttp import web

SCRATCH = sys.argv[2] if len(sys.argv) > 2 else tempfile.gettempdir()


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def sleepy(request: web.Request) -> web.Response:
    start = time.monotonic()
    time.sleep(0.2)  # blocks the loop
    return web.Response(text=f"{time.monotonic() - start:.6f}")


async def crunch(request: web.Request) -> web.Response:
    start = time.monotonic()
    total = 0
    while time.monotonic() - start < 0.15:
        total += sum(range(200))  # blocks the loop
    return web.Response(text=f"{time.monotonic() - start:.6f}")


async def write_file(request: web.Request) -> web.Response:
    start = time.monotonic()
    chunk = b"x" * (1 << 20)
    with open(os.path.join(SCRATCH, "written.bin"), "wb") as out:
        while time.monotonic() - start < 0.12:
            out.write(chunk)  # blocks the loop
            out.flush()  # blocks the loop
            os.fsync(out.fileno())  # blocks the loop
            out.seek(0)
    return web.Response(text=f"{time.monotonic() - start:.6f}")


async def main() -> None:
    done = asyncio.Event()

    async def quit_(request: web.Request) -> web.Response:
        done.set()
        return web.Response(text="bye")

    app = web.Application()
    app.add_routes([web.get("/", hello), web.get("/sleep", sleepy), web.get("/cpu", crunch),
                    web.get("/write", write_file), web.get("/quit", quit_)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    await done.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
