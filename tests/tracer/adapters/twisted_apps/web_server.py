"""A twisted.web site under load from Twisted's own Agent, in one process.

``/page`` blocks the loop for 200 ms on every tenth request (a render_GET that sleeps);
``/later`` answers 50 ms later through deferLater, without blocking.  The program requests
each page REQUESTS times, one request at a time, then stops; it writes how long each blocking
sleep really took, by its own clock, to the JSON file named by its first argument.
"""

import json
import sys
import time

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.web.client import Agent, readBody
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

REQUESTS = 30
slept = []


class Page(Resource):
    isLeaf = True
    served = 0

    def render_GET(self, request):
        Page.served += 1
        if Page.served % 10 == 0:
            start = time.perf_counter()
            time.sleep(0.2)  # blocks the loop
            slept.append(time.perf_counter() - start)
        return b"page"


class Later(Resource):
    isLeaf = True

    def render_GET(self, request):
        task.deferLater(reactor, 0.05, self.answer, request)
        return NOT_DONE_YET

    def answer(self, request):
        request.write(b"later")
        request.finish()


@inlineCallbacks
def load(port):
    agent = Agent(reactor)
    for path in (b"/page", b"/later"):
        for _ in range(REQUESTS):
            response = yield agent.request(b"GET", b"http://127.0.0.1:%d%s" % (port, path))
            yield readBody(response)


def main():
    root = Resource()
    root.putChild(b"page", Page())
    root.putChild(b"later", Later())
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1").getHost().port
    reactor.callWhenRunning(lambda: load(port).addBoth(lambda _: reactor.stop()))
    reactor.run()
    with open(sys.argv[1], "w") as out:
        json.dump({"slept": slept, "served": Page.served}, out)


if __name__ == "__main__":
    main()
