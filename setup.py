"""The build step pyproject.toml (the project's configuration) cannot declare: ``loopscope.pth``
in the root of site-packages.

Python's ``site`` runs the ``import`` lines of the ``.pth`` files there at the start of every
program of the environment.  This one traces the Python programs a traced process starts with
``-E`` or ``-I``, which read no PYTHONPATH (tracer/spawned.py says how the others are traced).
setuptools puts package files only: a wheel gets the file from ``build_py`` (the root of its
build directory is the root of the wheel), an editable install (``pip install -e``, PEP 660)
from ``editable_wheel``, beside setuptools' own ``__editable__`` .pth file.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import EditableStrategy, editable_wheel

PTH_NAME = "loopscope.pth"

#: What the .pth line runs when a traced process started this program (tracer.spawned.ENV is
#: set) and the program ignores the environment (otherwise PYTHONPATH has brought the boot
#: directory already, or the child's environment dropped it).  It puts back the one PYTHONPATH
#: entry that traces a child, tracer.spawned.BOOT_DIR, when that entry is this installation's
#: own (the parent is this loopscope): only this installation's directory, never one the
#: environment names, goes on an isolated program's path.  Its sitecustomize.py then boots the
#: child at the end of ``site`` as in any other child: once (``site`` runs this .pth twice in a
#: venv on Python 3.11), with every site directory on the path.  The tracer package is found,
#: not imported.  ``site`` prints the traceback of a .pth line that raises: all is in a try.
_RESTORE_BOOT_DIR = """\
try:
    import importlib.util
    tracer = os.path.abspath(importlib.util.find_spec("tracer").origin)
    boot = os.path.join(os.path.dirname(tracer), "_boot")
    if boot in os.environ.get("PYTHONPATH", "").split(os.pathsep) and boot not in sys.path:
        sys.path.insert(0, boot)
except Exception:
    pass
"""
#: What the .pth line runs when the program's environment has no tracer.spawned.ENV and the
#: process that started it has a file in tracer.spawned.registry() (a traced parent that gave
#: it an environment of its own): tracer.spawned.adopt checks that file and takes ENV from it.
#: The tracer package is imported only then.
_ADOPT = """\
try:
    from tracer import spawned
    spawned.adopt()
except Exception:
    pass
"""
#: One line, run at every start: a program that is not traced pays a dict lookup and, on Linux,
#: a stat (``site`` has imported os and sys already), and imports nothing.
_REGISTRY_FILE = 'f"/tmp/loopscope-{os.getuid()}/{os.getppid()}"'  # tracer.spawned.registry()
PTH = (f"import os, sys; (sys.flags.ignore_environment and exec({_RESTORE_BOOT_DIR!r})) "
       f'if "LOOPSCOPE_PARENT_TRACE" in os.environ else sys.platform.startswith("linux") '
       f"and os.path.exists({_REGISTRY_FILE}) and exec({_ADOPT!r})\n")


class BuildPyWithPth(build_py):
    """A wheel: the .pth goes to the root of the build directory."""

    def run(self) -> None:
        super().run()
        Path(self.build_lib, PTH_NAME).write_text(PTH)


class EditableWheelWithPth(editable_wheel):
    """An editable wheel's own files are written by the strategy setuptools picks (a .pth file
    of its own, with a finder or links): the .pth goes beside them.  ``_select_strategy`` is
    setuptools' own, the same from 64 to 84 at least: were it renamed, an editable install
    would have no .pth, and tests/tracer/test_many_processes.py would fail."""

    def _select_strategy(self, name: str, tag: str, build_lib: str) -> EditableStrategy:
        return _WithPth(super()._select_strategy(name, tag, build_lib))


class _WithPth:
    """An editable wheel's strategy that also writes the .pth."""

    def __init__(self, strategy: EditableStrategy) -> None:
        self.strategy = strategy

    def __enter__(self) -> _WithPth:
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.strategy.__exit__(*exc)

    def __call__(self, wheel, files, mapping) -> None:
        self.strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH.encode())


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
