"""A parent on loopscope's reactor that starts a multiprocessing worker (start method from
argv[1]) and a Python subprocess on asyncio; each of the three blocks its own loop once, for
a time of its own, in a function named after it."""

import multiprocessing
import os
import subprocess
import sys
import time

from reactor import reactor

import workers


def parent_blocks() -> None:
    time.sleep(0.12)


def start_children() -> None:
    context = multiprocessing.get_context(sys.argv[1])
    worker = context.Process(target=workers.worker_main)
    worker.start()
    child = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                           "asyncio_child.py"), "an argument"])
    reactor.callLater(0.05, parent_blocks)
    reactor.callLater(0.3, finish, worker, child)


def finish(worker: multiprocessing.Process, child: subprocess.Popen) -> None:
    """Stop once both children have ended, looking every 50 ms (waiting would block)."""
    if worker.exitcode is None or child.poll() is None:
        reactor.callLater(0.05, finish, worker, child)
        return
    print(f"worker {worker.pid} {worker.exitcode} child {child.pid} {child.returncode}",
          flush=True)
    reactor.stop()


if __name__ == "__main__":
    reactor.callWhenRunning(start_children)
    reactor.run()
