"""The Python subprocess of app.py: an asyncio loop, blocked once; it checks that it got its
own argv and that its PYTHONPATH entries come through."""

import asyncio
import sys
import time


def child_blocks() -> None:
    time.sleep(0.2)


async def main() -> None:
    asyncio.get_running_loop().call_later(0.05, child_blocks)
    await asyncio.sleep(0.4)


if __name__ == "__main__":
    assert sys.argv[1:] == ["an argument"], sys.argv
    asyncio.run(main())
