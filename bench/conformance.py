"""Twisted conformance: Twisted's own test modules, run against loopscope.

    python bench/conformance.py                    # all modules, against loopscope
    python bench/conformance.py --against-twisted  # the same copies, unrewritten
    python bench/conformance.py test_error test_defer --details

Each module listed in ``bench/conformance_cases.py`` is copied from the
installed Twisted into a temporary package.  Against loopscope its imports of
``twisted.internet`` defer/protocol/task/error/reactor..., ``twisted.python``
failure/log/threadpool and ``twisted.protocols.basic`` are rewritten to
loopscope's modules (trial, zope.interface and Twisted's test helpers stay
Twisted's); ``--against-twisted`` runs the copies as they are, which checks
that the harness itself counts right.  Each module runs under trial in its own
subprocess with a time limit (``bench/conformance_runner.py``).

Every test is counted once:

    passed          it passed (an expected failure counts as passed)
    failed          it failed or errored
    missing-api     it stopped on a name loopscope does not have
    not-applicable  listed in conformance_cases.NOT_APPLICABLE, or it needs a
                    reactor interface loopscope does not offer; each has a reason
    skipped         trial skipped it for its own reason (a platform feature)

"runnable" is passed + failed; the pass rate is passed / runnable.  The last
line printed is the whole result as one JSON object.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conformance_cases as cases  # noqa: E402  (bench/ is not a package)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

MODULE_TIME_LIMIT = 900.0
"""Seconds one module's subprocess may run.  The slowest module (test_tcp of
internet/test) takes about a minute on a quiet machine; the limit only stops
a run that hangs outside trial's own per-test timeout."""

TEST_TIME_LIMIT = 10.0
"""Seconds trial lets one test wait.  These tests talk over loopback and end
in milliseconds on either reactor; one still waiting after 10 s is hung, and
trial's default (120 s) would make a run with a few hung tests take an hour."""

OUTCOMES = ("passed", "failed", "missing-api", "not-applicable", "skipped")


# -- copying and rewriting ------------------------------------------------------

def twisted_root() -> Path:
    import twisted

    return Path(twisted.__file__).resolve().parent


def _copy_name(twisted_module: str) -> str | None:
    """The copy's dotted name for a listed Twisted test module, else None."""
    for path, short in cases.MODULES.items():
        if twisted_module == "twisted." + path[:-3].replace("/", "."):
            return f"{cases.PACKAGE}.{short}"
    return None


def _rewrite_names(module: str, names: list[ast.alias]) -> list[str]:
    """Statements replacing ``from module import names``."""
    copy = _copy_name(module)
    if copy is not None:
        return [f"from {copy} import {', '.join(_alias(a) for a in names)}"]
    statements = []
    kept = []
    for a in names:
        bound = a.asname or a.name
        full = f"{module}.{a.name}"
        if full == "twisted.internet.reactor":
            statements.append(f"{bound} = _lsconf.the_reactor()")
        elif full in cases.REWRITES:
            statements.append(f"{bound} = _lsconf.module({cases.REWRITES[full]!r})")
        elif _copy_name(full) is not None:
            statements.append(f"import {_copy_name(full)} as {bound}")
        elif module in cases.REWRITES:
            statements.append(f"{bound} = _lsconf.attr({cases.REWRITES[module]!r}, {a.name!r})")
        else:
            kept.append(a)
    if kept:
        statements.insert(0, f"from {module} import {', '.join(_alias(a) for a in kept)}")
    return statements


def _alias(a: ast.alias) -> str:
    return f"{a.name} as {a.asname}" if a.asname else a.name


def _rewrite_import(node: ast.Import) -> list[str] | None:
    """Statements replacing ``import a.b as c`` when a.b is rewritten."""
    statements = []
    changed = False
    for a in node.names:
        if a.asname and a.name in cases.REWRITES:
            statements.append(f"{a.asname} = _lsconf.module({cases.REWRITES[a.name]!r})")
            changed = True
        elif a.asname and _copy_name(a.name):
            statements.append(f"import {_copy_name(a.name)} as {a.asname}")
            changed = True
        else:
            statements.append(f"import {_alias(a)}")
    return statements if changed else None


def rewrite(source: str) -> str:
    """``source`` with its imports of rewritten Twisted modules pointed at
    loopscope.  Line numbers are kept (a statement's replacement is written
    on its first line, joined by ``;``), so tracebacks match the original."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            statements = _rewrite_names(node.module, node.names)
            if statements == [f"from {node.module} import "
                              f"{', '.join(_alias(a) for a in node.names)}"]:
                continue
        elif isinstance(node, ast.Import):
            statements = _rewrite_import(node)
            if statements is None:
                continue
        else:
            continue
        edits.append((node, statements))
    for node, statements in sorted(edits, key=lambda e: -e[0].lineno):
        first, last = node.lineno - 1, node.end_lineno - 1
        head = lines[first][: node.col_offset]
        tail = lines[last][node.end_col_offset:]
        if any("_lsconf." in s for s in statements):
            statements.insert(0, "import conformance_shim as _lsconf")
        lines[first:last + 1] = [head + "; ".join(statements) + tail] + ["\n"] * (last - first)
    return "".join(lines)


def make_copies(target: Path, rewritten: bool) -> None:
    """Copy every listed module into ``target/PACKAGE``, rewritten or not (all
    of them, even when only some run: they import each other's helpers)."""
    package = target / cases.PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    root = twisted_root()
    for path, short in cases.MODULES.items():
        source = (root / path).read_text(encoding="utf-8")
        if rewritten:
            source = rewrite(source)
        else:
            source = _point_at_copies(source)
        (package / f"{short}.py").write_text(source, encoding="utf-8")
    for path in cases.DATA_FILES:
        shutil.copyfile(root / path, package / Path(path).name)


def _point_at_copies(source: str) -> str:
    """Unrewritten copies still import each other's copies, as the rewritten
    ones do, so both modes run the same code."""
    for path, short in cases.MODULES.items():
        dotted = "twisted." + path[:-3].replace("/", ".")
        source = re.sub(rf"\bfrom {re.escape(dotted)} import\b",
                        f"from {cases.PACKAGE}.{short} import", source)
    return source


# -- running -----------------------------------------------------------------------

@dataclass
class ModuleResult:
    """The outcome of one module's run: counts and the tests behind them."""

    module: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    tests: list[dict] = field(default_factory=list)
    note: str = ""


def classify(record: dict) -> tuple[str, str | None]:
    """(outcome, detail) for one test's record from the runner."""
    outcome = record["outcome"]
    reason = record.get("reason") or ""
    if outcome in ("pass", "xfail"):
        return "passed", None
    if outcome == "skip":
        if reason.startswith("not-applicable: "):
            return "not-applicable", reason[len("not-applicable: "):]
        for name, why in cases.UNOFFERED_INTERFACES.items():
            if "does not provide" in reason and name in reason:
                return "not-applicable", f"needs {name}: {why}"
        return "skipped", reason
    missing = [e["missing"] for e in record["errors"] if e.get("missing")]
    if missing:
        return "missing-api", missing[0]
    first = record["errors"][0] if record["errors"] else {}
    return "failed", f"{first.get('type', outcome)}: {first.get('message', '')}"[:300]


def run_module(short: str, copies: Path, mode: str, workdir: Path,
               test_time_limit: float = TEST_TIME_LIMIT) -> ModuleResult:
    """Run one copied module in a subprocess and count its tests."""
    out = workdir / f"{short}.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copies), str(BENCH), str(ROOT),
                                         env.get("PYTHONPATH", "")])
    env.pop("LOOPSCOPE_TRACE", None)
    cmd = [sys.executable, str(BENCH / "conformance_runner.py"), "--mode", mode,
           "--timeout", str(test_time_limit), short, str(out)]
    result = ModuleResult(short)
    started = time.monotonic()
    with open(workdir / f"{short}.stderr", "w") as err:
        try:
            proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=err, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=MODULE_TIME_LIMIT)
            if proc.returncode != 0:
                result.note = f"runner exited with {proc.returncode}"
        except subprocess.TimeoutExpired:
            result.note = f"stopped after {MODULE_TIME_LIMIT:.0f} s"
    result.note = (result.note + f" ({time.monotonic() - started:.0f} s)").strip()
    records, hung = _read_records(out)
    for record in records:
        outcome, detail = classify(record)
        result.counts[outcome] += 1
        result.tests.append({"key": record["key"], "outcome": outcome, "detail": detail,
                             "errors": record["errors"]})
    if hung is not None:
        result.counts["failed"] += 1
        result.tests.append({"key": hung, "outcome": "failed",
                             "detail": "hung: the module's time limit ended it", "errors": []})
    return result


def _read_records(path: Path) -> tuple[list[dict], str | None]:
    """The runner's finished records, and the test that started but never ended."""
    records: list[dict] = []
    started: str | None = None
    if not path.exists():
        return records, None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if "start" in record:
            started = record["key"]
        else:
            records.append(record)
            started = None
    return records, started


# -- reporting ------------------------------------------------------------------------

def table(results: list[ModuleResult]) -> str:
    """The per-module table, with a total row."""
    header = f"{'module':34} {'passed':>7} {'failed':>7} {'missing':>8} {'n/a':>5} {'skipped':>8}"
    rows = [header, "-" * len(header)]
    total = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        c = r.counts
        for k in OUTCOMES:
            total[k] += c[k]
        rows.append(f"{r.module:34} {c['passed']:7} {c['failed']:7} {c['missing-api']:8} "
                    f"{c['not-applicable']:5} {c['skipped']:8}  {r.note}")
    rows.append("-" * len(header))
    rows.append(f"{'total':34} {total['passed']:7} {total['failed']:7} "
                f"{total['missing-api']:8} {total['not-applicable']:5} {total['skipped']:8}")
    runnable = total["passed"] + total["failed"]
    rate = 100.0 * total["passed"] / runnable if runnable else 0.0
    rows.append(f"pass rate: {total['passed']}/{runnable} runnable = {rate:.1f}%")
    return "\n".join(rows)


def markdown(results: list[ModuleResult]) -> str:
    """The per-module table and every not-applicable or skipped test with its
    reason, as Markdown (docs/conformance.md is made from it)."""
    lines = ["| module | passed | failed | missing-api | not-applicable | skipped |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    total = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        c = r.counts
        for k in OUTCOMES:
            total[k] += c[k]
        lines.append(f"| {_twisted_path(r.module)} | {c['passed']} | {c['failed']} | "
                     f"{c['missing-api']} | {c['not-applicable']} | {c['skipped']} |")
    lines.append(f"| **total** | **{total['passed']}** | **{total['failed']}** | "
                 f"**{total['missing-api']}** | **{total['not-applicable']}** | "
                 f"**{total['skipped']}** |")
    for kind in ("not-applicable", "skipped"):
        rows = [(r.module, t["key"], t["detail"]) for r in results for t in r.tests
                if t["outcome"] == kind]
        if rows:
            lines += ["", f"### {kind} ({len(rows)})", "", "| module | test | reason |",
                      "| --- | --- | --- |"]
            lines += [f"| {_twisted_path(m)} | `{k}` | {d} |" for m, k, d in rows]
    return "\n".join(lines)


def _twisted_path(short: str) -> str:
    return next(path for path, name in cases.MODULES.items() if name == short)


def summary(results: list[ModuleResult], mode: str) -> dict[str, Any]:
    """The machine-readable result (the JSON line)."""
    total = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        for k in OUTCOMES:
            total[k] += r.counts[k]
    runnable = total["passed"] + total["failed"]
    return {
        "against": mode,
        "modules": {r.module: r.counts for r in results},
        "total": total,
        "runnable": runnable,
        "pass_rate": round(total["passed"] / runnable, 4) if runnable else None,
    }


def unmatched_not_applicable(results: list[ModuleResult]) -> list[tuple[str, str]]:
    """Not-applicable patterns of the modules run that matched no test (a
    stale entry would hide nothing, but would mislead whoever reads the list)."""
    from fnmatch import fnmatchcase

    keys = {r.module: [t["key"] for t in r.tests] for r in results}
    return [(module, pattern) for module, pattern in cases.NOT_APPLICABLE
            if module in keys and not any(fnmatchcase(k, pattern) for k in keys[module])]


def details(results: list[ModuleResult], kinds: set[str]) -> str:
    """Each test of the given outcomes with its detail (an error, a reason)."""
    lines = []
    for r in results:
        for t in r.tests:
            if t["outcome"] in kinds:
                lines.append(f"{r.module}  {t['outcome']:14} {t['key']}\n    {t['detail']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/conformance.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="short module names (default: all): " + " ".join(cases.MODULES.values()))
    parser.add_argument("--against-twisted", action="store_true",
                        help="run the copies unrewritten, on Twisted itself")
    parser.add_argument("--details", action="store_true",
                        help="list every failed and missing-api test with its error")
    parser.add_argument("--list-not-applicable", action="store_true",
                        help="list every not-applicable and skipped test with its reason")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the table and the not-applicable list as Markdown")
    parser.add_argument("--test-timeout", type=float, default=TEST_TIME_LIMIT, metavar="S",
                        help=f"seconds one test may wait (default {TEST_TIME_LIMIT:.0f})")
    parser.add_argument("--keep", metavar="DIR", help="write the copies and logs to DIR and keep them")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in cases.MODULES.values()]
    if unknown:
        print(f"loopscope: error: unknown module(s): {' '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        import twisted  # noqa: F401
    except ImportError:
        print("loopscope: error: Twisted is not installed (pip install -e '.[test]')",
              file=sys.stderr)
        return 2
    mode = "twisted" if args.against_twisted else "loopscope"
    with tempfile.TemporaryDirectory(prefix="loopscope-conformance-") as tmp:
        base = Path(args.keep).resolve() if args.keep else Path(tmp)
        copies, workdir = base / "copies", base / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        make_copies(copies, rewritten=not args.against_twisted)
        results = []
        for short in cases.MODULES.values():
            if args.modules and short not in args.modules:
                continue
            results.append(run_module(short, copies, mode, workdir, args.test_timeout))
            print(f"{short}: {results[-1].counts}", file=sys.stderr, flush=True)
    for module, pattern in unmatched_not_applicable(results):
        print(f"loopscope: warning: not-applicable pattern matches no test: {module} {pattern}",
              file=sys.stderr)
    print(f"Twisted's tests against {'Twisted' if args.against_twisted else 'loopscope'}")
    print(table(results))
    if args.details:
        print(details(results, {"failed", "missing-api"}))
    if args.list_not_applicable:
        print(details(results, {"not-applicable", "skipped"}))
    if args.markdown:
        print(markdown(results))
    print(json.dumps(summary(results, mode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
