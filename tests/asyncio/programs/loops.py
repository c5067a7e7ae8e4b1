"""One blocking callback on an asyncio loop started in the way argv[1] says.

    python loops.py run|runner|factory|own-clock|manual|thread|two-threads

``two-threads`` runs a loop in the main thread and another in a second thread at the same
time, each blocking once (the second one after the first, see docs/asyncio.md on threads).
"""

import asyncio
import sys
import threading
import time


async def stuck_in_main() -> None:
    await asyncio.sleep(0.01)
    time.sleep(0.15)  # blocks the loop


async def stuck_in_thread() -> None:
    await asyncio.sleep(0.5)
    time.sleep(0.12)  # blocks the loop


def late_callback() -> None:
    time.sleep(0.1)  # blocks the loop


async def main() -> None:
    asyncio.get_running_loop().call_later(0.02, late_callback)
    await stuck_in_main()
    await asyncio.sleep(0.15)


class OwnClock(asyncio.SelectorEventLoop):
    """A loop whose clock is not the monotonic clock (its timers are due in its own time)."""

    def time(self) -> float:
        return super().time() - 1000.0


def in_thread() -> None:
    asyncio.run(stuck_in_thread())


if __name__ == "__main__":
    how = sys.argv[1]
    if how == "run":
        asyncio.run(main())
    elif how == "runner":
        with asyncio.Runner() as runner:
            runner.run(main())
    elif how == "factory":
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            runner.run(main())
    elif how == "own-clock":
        with asyncio.Runner(loop_factory=OwnClock) as runner:
            runner.run(main())
    elif how == "manual":
        loop = asyncio.new_event_loop()
        loop.run_until_complete(main())
        loop.close()
    elif how == "thread":
        worker = threading.Thread(target=asyncio.run, args=(main(),))
        worker.start()
        worker.join()
    elif how == "two-threads":
        worker = threading.Thread(target=in_thread)
        worker.start()
        asyncio.run(main())
        worker.join()
