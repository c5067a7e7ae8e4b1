"""The layers of docs/architecture.md, enforced: by the imports each file writes (lazy ones
included), and at run time, in a fresh interpreter, by what reading a trace loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "traces" / "blocking_server.jsonl"

#: Modules of the recording side: the C extension, the probe and what installs it.  Reading,
#: summarising, exporting and replaying a trace must never load them (nor the reactor).
RECORDING = ("tracer._native", "tracer.session", "tracer.probe", "tracer.recorder",
             "tracer.watchdog", "reactor")


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, at module level or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("package, forbidden", [
    # The event loop knows nothing of who watches it.
    ("reactor", ("tracer", "tui", "loopscope", "orjson", "textual")),
    # Recording and reading traces: no dashboard, no CLI.
    ("tracer", ("tui", "textual", "rich", "loopscope")),
    # The dashboard shows traces: it reads them and never records, nor imports the CLI above it.
    ("tui", ("loopscope",) + RECORDING),
])
def test_imports_flow_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {str(f.relative_to(ROOT)): forbidden_in(imported_modules(f), forbidden) for f in files}
    assert {f: names for f, names in offenders.items() if names} == {}


def test_the_reading_modules_import_nothing_of_the_recording_side() -> None:
    reading = ["format", "reader", "model", "summary", "export"]
    offenders = {m: forbidden_in(imported_modules(ROOT / "tracer" / f"{m}.py"), RECORDING)
                 for m in reading}
    assert {m: names for m, names in offenders.items() if names} == {}


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize("what, code", [
    ("summary", f"from loopscope.cli import main; main(['summary', '--json', {str(SAMPLE)!r}])"),
    ("export", f"from loopscope.cli import main; "
               f"main(['export', {str(SAMPLE)!r}, '-o', '/dev/null'])"),
    ("replay", f"from tui.app import LoopscopeApp\nfrom tui.feed import Feed\n"
               f"import time\nfeed = Feed({str(SAMPLE)!r}, follow=False); feed.start()\n"
               f"while not feed.loaded and feed.error is None: time.sleep(0.01)\n"
               f"assert feed.model is not None and len(feed.model) > 0, feed.error"),
])
def test_reading_a_trace_loads_no_extension_and_no_reactor(what: str, code: str) -> None:
    loaded = loaded_after(code)
    assert forbidden_in(loaded, RECORDING) == [], what


def test_summary_works_without_the_compiled_extension() -> None:
    code = ("import sys; sys.modules['tracer._native'] = None\n"
            f"from loopscope.cli import main; raise SystemExit(main(['summary', {str(SAMPLE)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Blocking callbacks" in proc.stdout
