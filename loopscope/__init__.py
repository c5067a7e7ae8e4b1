"""loopscope: shows what an event loop is doing and finds the callbacks that block it.

This package is the top layer (docs/architecture.md, "Layers"): the command line, which
assembles the recording side of :mod:`tracer`, its reading side and the :mod:`tui` dashboard.
Nothing below it imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loopscope")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
