"""A coroutine that blocks the loop, on uvloop."""

import asyncio
import time

import uvloop


async def stuck() -> None:
    await asyncio.sleep(0.02)
    time.sleep(0.25)  # blocks the loop


async def main() -> None:
    await asyncio.gather(stuck(), asyncio.sleep(0.05))
    await asyncio.sleep(0.05)


if __name__ == "__main__":
    uvloop.run(main())
