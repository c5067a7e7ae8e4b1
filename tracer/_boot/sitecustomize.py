"""Imported by Python at startup in a program a traced process started (tracer/spawned.py
put this directory first on PYTHONPATH; in a program that reads no PYTHONPATH, ``-E`` or
``-I``, loopscope.pth put it first on sys.path): it puts back what it hid, then starts tracing.

This directory comes off ``sys.path`` at once, and the ``sitecustomize`` it stands in front
of (the user's or the system's own, if any) is imported as Python would have, so the program
sees its own path and customisation.  Tracing starts only when the ``tracer`` package that
Python finds is the one beside this directory.
"""

import importlib.util
import os
import sys


def _hand_over() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    this = sys.modules.pop(__name__)
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401 - the one it hid
    except ImportError as e:
        sys.modules[__name__] = this  # there is none: Python's import expects this module
        if e.name != "sitecustomize":
            raise
    finally:
        try:
            spec = importlib.util.find_spec("tracer")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin is not None and \
                os.path.dirname(os.path.abspath(spec.origin)) == os.path.dirname(here):
            from tracer import spawned
            spawned.boot()


_hand_over()
