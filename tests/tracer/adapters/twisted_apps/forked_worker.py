"""A Twisted program that forks a multiprocessing worker before it runs the reactor; each
process's reactor runs a callback that blocks."""

import multiprocessing
import time

from twisted.internet import reactor


def worker_blocks():
    time.sleep(0.15)  # the worker's stall


def parent_blocks():
    time.sleep(0.12)  # the parent's stall


def run(blocks):
    reactor.callLater(0.01, blocks)
    reactor.callLater(0.3, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    worker = multiprocessing.get_context("fork").Process(target=run, args=(worker_blocks,))
    worker.start()
    run(parent_blocks)
    worker.join()
    print("worker exit status", worker.exitcode)
