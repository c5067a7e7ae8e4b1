"""Start a child with SIGINT set as a test needs, however the test run itself was started.

A shell starts a background job (``pytest ... &``, nohup, some CI runners) with SIGINT
ignored, and children inherit that: Python then installs no KeyboardInterrupt handler and the
reactor, as Twisted's does, leaves an ignored SIGINT ignored.  A test of what Ctrl-C does must
not depend on how the suite was launched, so it runs its child through :func:`with_sigint`.
"""

from __future__ import annotations

import sys

#: Sets SIGINT's disposition (argv[1]: "SIG_DFL" or "SIG_IGN"), then becomes the real command.
_SET_THEN_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, "
                  "sys.argv[1])); os.execv(sys.argv[2], sys.argv[2:])")


def with_sigint(argv: list[str], ignored: bool = False) -> list[str]:
    """``argv`` run with SIGINT at its default, as from an interactive shell, or with
    ``ignored``, as in a shell's background job."""
    return [sys.executable, "-c", _SET_THEN_EXEC, "SIG_IGN" if ignored else "SIG_DFL", *argv]
