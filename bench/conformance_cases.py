"""What the conformance harness runs, and what it does not count.

``MODULES`` are the Twisted test modules copied and run (Twisted path ->
short name).  ``REWRITES`` maps the Twisted modules they import to
loopscope's; every other import (trial, zope.interface, Twisted's test
helpers and interfaces) stays Twisted's.  ``NOT_APPLICABLE`` lists tests that
say nothing about loopscope, each pattern with its reason; they are skipped
in both modes, so the two tables count the same tests.
"""

from __future__ import annotations

# Twisted module path (under twisted/) -> the name its copy is imported as.
MODULES: dict[str, str] = {
    "test/test_defer.py": "test_defer",
    "test/test_failure.py": "test_failure",
    "test/test_task.py": "test_task",
    "test/test_cooperator.py": "test_cooperator",
    "protocols/test/test_basic.py": "protocols_test_basic",
    "internet/test/test_inlinecb.py": "internet_test_inlinecb",
    "internet/test/test_defer_await.py": "internet_test_defer_await",
    "internet/test/test_defer_yieldfrom.py": "internet_test_defer_yieldfrom",
    "internet/test/test_protocol.py": "internet_test_protocol",
    "test/test_error.py": "test_error",
    "internet/test/test_core.py": "internet_test_core",
    "internet/test/test_time.py": "internet_test_time",
    "internet/test/test_threads.py": "internet_test_threads",
    "internet/test/test_tcp.py": "internet_test_tcp",
    "internet/test/test_unix.py": "internet_test_unix",
    "test/test_internet.py": "test_internet",
    "test/test_threads.py": "test_threads",
    "test/test_tcp.py": "test_tcp",
    "test/test_threadpool.py": "test_threadpool",
}

PACKAGE = "lsconf"
"""The package the copies live in (``lsconf.test_defer``...)."""

# Twisted module -> loopscope module.  ``twisted.internet.reactor`` is the
# default reactor instance, handled on its own.
REWRITES: dict[str, str] = {
    "twisted.internet.defer": "reactor.defer",
    "twisted.internet.protocol": "reactor.protocol",
    "twisted.internet.task": "reactor.task",
    "twisted.internet.error": "reactor.error",
    "twisted.internet.main": "reactor.main",
    "twisted.internet.base": "reactor.base",
    "twisted.internet.tcp": "reactor.tcp",
    "twisted.internet.unix": "reactor.unix",
    "twisted.internet.udp": "reactor.udp",
    "twisted.internet.threads": "reactor.threads",
    "twisted.internet.address": "reactor.address",
    "twisted.internet.endpoints": "reactor.endpoints",
    "twisted.internet.ssl": "reactor.ssl",
    "twisted.python.failure": "reactor.failure",
    "twisted.python.threadpool": "reactor.threadpool",
    "twisted.python.log": "reactor.log",
    "twisted.protocols.basic": "reactor.basic",
}

# Interfaces loopscope's Reactor is declared to provide (for ReactorBuilder's
# requiredInterfaces).  The ones the project means to offer are declared even
# where a method is still missing, so those tests count as missing-api rather
# than vanish as skips.
DECLARED_INTERFACES = [
    "IReactorCore", "IReactorTime", "IReactorFDSet", "IReactorThreads",
    "IReactorFromThreads", "IReactorInThreads", "IReactorTCP", "IReactorUNIX",
    "IReactorUDP", "IReactorProcess", "IReactorSSL", "IReactorPluggableResolver",
]

# Interfaces loopscope does not mean to offer: a ReactorBuilder test that
# requires one is not-applicable, with this reason.
UNOFFERED_INTERFACES = {
    "IReactorSocket": "adopting sockets made elsewhere (adoptStreamPort...) is not offered",
    "IReactorUNIXDatagram": "Unix datagram sockets are not offered",
    "IReactorMulticast": "multicast is not offered",
    "IReactorPluggableNameResolver": "the name-resolver plug-in API is not offered",
    "_ISupportsExitSignalCapturing": "a private Twisted interface",
    "IReactorWin32Events": "Windows only",
}

# (module short name, fnmatch pattern on "Class.method") -> reason.  A
# ReactorBuilder class is named without its reactor suffix
# ("TCPClientTestsBuilder.test_x", not "..._EPollReactorTests.test_x").
NOT_APPLICABLE: dict[tuple[str, str], str] = {
}
