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

# Data files the modules read beside themselves (util.sibpath), copied with them.
DATA_FILES = ["test/server.pem"]

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
ZOPE = ("checks a zope.interface declaration (verifyObject, providedBy, adapters); "
        "loopscope's interfaces are plain classes and its objects do not declare Twisted's")
INTERNAL = "tests a private helper of Twisted's implementation, not its API"
DEPRECATION = "checks a DeprecationWarning Twisted emits about its own API's history"
CONSTRUCTOR = ("builds a Twisted-internal object by its constructor (DelayedCall, Port, "
               "Connection, Connector); loopscope's take different, private arguments")
CAPTURE_VARS = ("needs captureVars: loopscope's Failure never keeps frame variables (they "
                "would keep whole object graphs alive); documented in reactor/failure.py")
FD_PASSING = "passing file descriptors over Unix sockets (sendFileDescriptor) is not offered"
TWISTED_LOGGER = ("inspects twisted.logger's structured fields (log_format, log_level); "
                  "loopscope's log gives twisted.python.log's event dictionaries")

MIXED_DEFERREDS = ("Twisted's helper (connectionmixins) mixes its own Deferreds with "
                   "loopscope's: it returns a Twisted Deferred from a loopscope callback, "
                   "or awaits a loopscope Deferred in a Twisted coroutine, which goes on "
                   "at once; a ported program has one kind (tests/reactor/test_tcp.py "
                   "runs the same scenario on loopscope alone)")
LOG_CONTEXT = ("reads twisted.python.context's log context (the 'system' Twisted's "
               "reactor sets around every call); loopscope does not set one per call, "
               "which would cost on every callback: its reports name the protocol's "
               "method and the connection instead (tests/reactor/test_log.py)")

NOT_APPLICABLE: dict[tuple[str, str], str] = {
    # test_defer
    ("test_defer", "DeferredTests.test_DEFERRED_SUBCLASSES"): INTERNAL,
    ("test_defer", "DeferredTests.test_callbacksAttributeDeprecated"): DEPRECATION,
    ("test_defer", "DeferredFutureAdapterTests.test_fromFutureDeferredCancelled"):
        "deliberate: cancelling Deferred.fromFuture fails with CancelledError at once "
        "(Twisted waits for asyncio's own cancellation); see Deferred.fromFuture",
    ("test_defer", "LogTests.test_errorLogDebugInfo"):
        "deliberate: setting debug on one Deferred does nothing; debugging is "
        "defer.setDebugging(True) for all, read from a global so that it costs nothing "
        "when off (tests/reactor/test_defer_debug.py)",
    # protocols/test/test_basic
    ("protocols_test_basic", "FileSenderTests.test_interface"): ZOPE,
    ("protocols_test_basic", "NetstringReceiverTests.test_consumeLength*"): INTERNAL,
    ("protocols_test_basic", "NetstringReceiverTests.test_receiveNetstringPortions_1"):
        INTERNAL + " (_payloadComplete; tests/reactor/test_basic_strings.py splits "
        "netstrings everywhere)",
    ("protocols_test_basic", "NetstringReceiverTests.test_receiveTwoNetstrings"):
        INTERNAL + " (_payloadComplete; tests/reactor/test_basic_strings.py splits "
        "netstrings everywhere)",
    # test_failure
    ("test_failure", "FailureTests.test_printDetailedTracebackCapturedVars*"): CAPTURE_VARS,
    ("test_failure", "FailureTests.test_repr"):
        "deliberate: the repr names the class as it is (reactor.failure.Failure)",
    ("test_failure", "FailureTests.test_stackDeprecation"): DEPRECATION,
    ("test_failure", "FakeAttributesTests.*"): INTERNAL,
    ("test_failure", "FormattableTracebackTests.*"): INTERNAL,
    ("test_failure", "FindFailureTests.*"): INTERNAL,
    ("test_defer", "TimeoutErrorTests.test_deprecatedTimeout"): DEPRECATION,
    ("test_failure", "DebugModeTests.*"): CAPTURE_VARS,
    # test_task
    ("test_task", "ClockTests.testCallLater"): ZOPE,
    ("test_task", "ClockTests.test_providesIReactorTime"): ZOPE,
    ("test_task", "LoopTests.test_deferredDeprecation"): DEPRECATION,
    ("test_task", "React*Tests.test_defaultReactor"):
        "installs a reactor into Twisted's global registry (twisted.internet.main)",
    # internet/test/test_inlinecb
    ("internet_test_inlinecb", "BasicTests.testReturnValueDeprecated"): DEPRECATION,
    ("internet_test_inlinecb", "BasicTests.test_internalDefGenReturnValueDoesntLeak"):
        DEPRECATION,
    ("internet_test_inlinecb", "NonLocalExitTests.test_returnValueNonLocal*"): DEPRECATION,
    # internet/test/test_protocol
    ("internet_test_protocol", "*.test_interfaces"): ZOPE,
    ("internet_test_protocol", "AdapterTests.*"): ZOPE,
    ("internet_test_protocol", "FactoryTests.test_do*LoggingStatement"): TWISTED_LOGGER,
    # internet/test/test_threads
    ("internet_test_threads", "ThreadTestsBuilder.test_threadPoolCurrentThreadDeprecated"):
        DEPRECATION,
    ("internet_test_threads", "ThreadTestsBuilder.test_isInIOThread"):
        "checks twisted.python.threadable's registry, Twisted's own global state",
    # internet/test/test_tcp
    ("internet_test_tcp", "*.test_interface"): ZOPE,
    ("internet_test_tcp", "TCP*ConnectorTestsBuilder.test_connectorIdentity"): ZOPE,
    ("internet_test_tcp", "BuffersLogsTests.*"): INTERNAL,
    ("internet_test_tcp", "FileDescriptorReservationTests.*"): INTERNAL,
    ("internet_test_tcp", "NullFileDescriptorReservationTests.*"): INTERNAL,
    ("internet_test_tcp", "AssertPeerClosedOnEMFILETests.*"):
        "tests the test helper assertPeerClosedOnEMFILE itself (its fakes name "
        "Twisted's private reservation)",
    ("internet_test_tcp", "SimpleUtilityTests.*"): INTERNAL,
    ("internet_test_tcp", "*.test_getaddrinfo_*"):
        "tests socket.getaddrinfo itself, with Twisted's private _NUMERIC_ONLY flags",
    ("internet_test_tcp", "TCPFDPortTestsBuilder.*"):
        "listens through IReactorSocket.adoptStreamPort (adopting sockets made elsewhere), "
        "which is not offered",
    ("internet_test_tcp", "TestBindAddressBuilder.test_bindAddressListen*"): INTERNAL,
    ("internet_test_tcp", "TestBindAddressBuilder.test_bindAddressLegacy"):
        "deliberate: connectTCP starts connecting at once, so a reactor discarded without "
        "ever running tells the factory clientConnectionFailed (here: a Stop factory "
        "stopping a stopped reactor); Twisted starts on the first iteration and says "
        "nothing (tests/reactor/test_tcp.py::test_an_attempt_on_a_reactor_that_never_ran_"
        "fails_at_teardown)",
    ("internet_test_tcp", "TCPServerTests.*"): CONSTRUCTOR,
    ("internet_test_tcp", "TCPPortTests.*"): CONSTRUCTOR,
    ("internet_test_tcp", "TCPConnectionTests.*"): CONSTRUCTOR,
    ("internet_test_tcp", "TCPTransportTestsBuilder.test_serverAddressTCP*"):
        "reads Twisted's per-port session number (transport.sessionno), a private counter",
    ("internet_test_tcp", "TCPTransportTestsBuilder.test_streamingProducer"):
        "deliberate: loopscope writes to the socket at once when nothing is queued, so a "
        "producer is paused by what the kernel will not take, not by a 500-byte "
        "bufferSize set on the transport (tests/reactor/test_tcp.py covers flow control)",
    ("internet_test_tcp", "TCP*ClientTestsBuilder.test_logPrefix"): LOG_CONTEXT,
    ("internet_test_tcp", "TCP*ClientTestsBuilder.test_addresses"):
        "deliberate: ends comparing the transport's repr with Twisted's ('<class to addr "
        "at id>', with its private addr); loopscope's names the descriptor and peer. "
        "The resolver and the addresses it checks first: tests/reactor/test_resolve.py",
    ("internet_test_tcp", "TCP*ClientTestsBuilder.test_protocolGarbageAfterLostConnection"):
        MIXED_DEFERREDS,
    ("internet_test_tcp", "TCP*ClientTestsBuilder.test_writeAfterDisconnect"):
        MIXED_DEFERREDS,
    ("internet_test_tcp", "TCPConnectionTestsBuilder.test_resumeProducingWhileDisconnected"):
        MIXED_DEFERREDS,
    # internet/test/test_unix
    ("internet_test_unix", "UnixClientTestsBuilder.test_interface"): ZOPE,
    ("internet_test_unix", "RealSocketTests.test_tcpKeepAlive"): ZOPE,
    ("internet_test_unix", "RealSocketTests.test_tcpNoDelay"): ZOPE,
    ("internet_test_unix", "UNIXTestsBuilder.test_listenFailure"): INTERNAL,
    ("internet_test_unix", "UNIXTestsBuilder.test_multiFileDescriptorReceivedPerRecvmsg*"):
        INTERNAL,
    ("internet_test_unix", "UNIXTestsBuilder.test_*FileDescriptor*"): FD_PASSING,
    ("internet_test_unix", "UNIXTestsBuilder.test_fileDescriptorOverrun"): FD_PASSING,
    ("internet_test_unix", "UNIXTestsBuilder.test_descriptorDeliveredBeforeBytes"): FD_PASSING,
    ("internet_test_unix", "UNIXTestsBuilder.test_avoidLeakingFileDescriptors"): FD_PASSING,
    ("internet_test_unix", "UNIXTestsBuilder.test_logPrefix"): LOG_CONTEXT,
    ("internet_test_unix", "UNIXTestsBuilder.test_protocolGarbageAfterLostConnection"):
        MIXED_DEFERREDS,
    ("internet_test_unix", "UNIXTestsBuilder.test_writeAfterDisconnect"): MIXED_DEFERREDS,
    ("internet_test_unix", "UNIXTestsBuilder.test_mode"):
        "deliberate: stopListening removes the socket file (Twisted leaves it behind "
        "for the next listen to remove), and this test reads the mode after stopping; "
        "tests/reactor/test_client_creator_unix.py::test_listen_unix_mode reads it while "
        "listening",
    ("internet_test_unix", "UNIXDatagramTestsBuilder.*"):
        "Unix datagram sockets are not offered",
    # test/test_internet
    ("test_internet", "ThreePhaseEventTests.*"): INTERNAL,
    ("test_internet", "TimeTests.testDelayedCallSecondsOverride"): CONSTRUCTOR,
    ("test_internet", "ConnectorReprTests.test_tcp_repr"): CONSTRUCTOR,
    # test/test_tcp
    ("test_tcp", "ListeningTests.test_listen"): ZOPE,
    ("test_tcp", "ListeningTests.test_serverRepr"):
        "deliberate: a transport's repr names its descriptor and peer (as traces show "
        "it), not Twisted's per-port session number",
    ("test_tcp", "LoopbackTests.test_tcpNoDelay"):
        "deliberate: Nagle's algorithm is off by default (TCP_NODELAY, as asyncio does); "
        "tests/reactor/test_tcp.py::test_connect_accept_and_addresses checks it",
    ("test_tcp", "HalfCloseTests.testCloseWriteCloser"):
        "reads Twisted's private write buffer (transport._tempDataBuffer)",
    ("test_tcp", "LogTests.test_logstrClientSetup"):
        "reads Twisted's private logstr attribute of a connecting socket",
    # test/test_threadpool
    ("test_threadpool", "MemoryBackedTests.*"):
        "drives Twisted's private worker team (twisted._threads) in memory",
    ("test_threadpool", "ThreadPoolTests.test_workerStateTransition"):
        "reads Twisted's private worker counters (pool.workers, pool.waiters)",
}
