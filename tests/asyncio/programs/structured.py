"""TaskGroup, asyncio.timeout, to_thread, and a task whose exception nobody retrieves."""

import asyncio
import time


async def fetch(n: int) -> int:
    await asyncio.sleep(0.01 * n)
    return n


async def slow_forever() -> None:
    await asyncio.sleep(10)


async def broken() -> None:
    await asyncio.sleep(0.01)
    raise ValueError("part 7 is missing")


async def forgotten() -> None:
    raise KeyError("nobody asked")


def blocking_io() -> str:
    time.sleep(0.3)  # in a pool thread: the loop goes on
    return "done"


async def main() -> None:
    async with asyncio.TaskGroup() as group:
        results = [group.create_task(fetch(n)) for n in range(1, 4)]
    print([r.result() for r in results])

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(slow_forever())
            group.create_task(broken())
    except* ValueError as failures:
        print("TaskGroup failed:", failures.exceptions)

    try:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(1)
    except TimeoutError:
        print("timed out")

    print(await asyncio.to_thread(blocking_io))

    task = asyncio.create_task(forgotten())  # its exception is never retrieved
    await asyncio.sleep(0.01)
    del task  # the last reference: it is collected here, its exception unread


if __name__ == "__main__":
    asyncio.run(main())
