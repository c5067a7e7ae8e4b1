"""The multiprocessing worker of app.py: a reactor of its own (a forked worker must not
reuse the one its parent was running when it forked), blocked once."""

import time

from reactor import Reactor


def worker_blocks() -> None:
    time.sleep(0.16)


def worker_main() -> None:
    loop = Reactor()
    loop.callLater(0.05, worker_blocks)
    loop.callLater(0.4, loop.stop)
    loop.run()
