"""The ``loopscope`` command line (also ``python -m loopscope``): the top layer.

It assembles the others: recording (:mod:`tracer.session` through :func:`tracer.start`),
reading (:mod:`tracer.summary`, :mod:`tracer.export`) and the dashboard (:mod:`tui.launch`),
each imported only by the command that needs it, so that ``summary`` never loads Textual nor
the C extension.  Every failure a user can cause (a missing file, a file that is not a trace,
a bad option) ends as one line ``loopscope: error: <sentence>`` on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import subprocess
import sys
import time
import traceback
from types import ModuleType
from typing import IO, TYPE_CHECKING, NoReturn
from collections.abc import Callable, Sequence

import orjson

import loopscope
import tracer
from tracer import adapters
from tracer.backend import BackendError, probe_backend
from tracer.files import OutputError, write_replacing
from tracer.format import MAX_THRESHOLD_MS
from tracer.output import DRAIN_TIMEOUT, DRAIN_TIMEOUT_ENV, drain_timeout_from_env
from tui.keys import help_text
from tracer.reader import TraceError

if TYPE_CHECKING:
    from tracer.session import Tracer

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in how loopscope was called, reported as one sentence."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in loopscope's one-line style."""

    def error(self, message: str) -> NoReturn:
        print(f"loopscope: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def default_trace_path(target: list[str]) -> str:
    """The trace folder ``traces/<app>-<time>-<pid>.local/`` under the current directory (git
    ignores them): one trace file per process of the run."""
    app = target[1] if target[0] == "-m" else os.path.splitext(os.path.basename(target[0]))[0]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs("traces", exist_ok=True)
    return os.path.join("traces", f"{app}-{stamp}-{os.getpid()}.local", "")


def is_folder_output(path: str) -> bool:
    """``-o DIR/`` (or an existing directory): a trace folder, one file per process."""
    return path.endswith(os.sep) or os.path.isdir(path)


def folder_trace_path(folder: str) -> str:
    """This process's trace in a new trace folder ``folder`` (created here): ``<pid>.jsonl``.
    A folder that already holds traces is refused: it would mix two runs."""
    try:
        os.makedirs(folder, exist_ok=True)
        held = [name for name in os.listdir(folder) if name.endswith(".jsonl")]
    except OSError as e:
        raise UsageError(f"cannot make the trace folder {folder}: {e.strerror}") from None
    if held:
        raise UsageError(f"the trace folder {folder} already holds traces ({held[0]}...): "
                         f"choose a new folder for this run")
    return os.path.join(folder, f"{os.getpid()}.jsonl")


def split_target(args: argparse.Namespace) -> list[str]:
    """``["script.py", *args]`` or ``["-m", "module", *args]`` from the run options."""
    if args.module:
        return ["-m", args.module, *args.args]
    if not args.args:
        raise UsageError("run needs a SCRIPT or -m MODULE to run")
    return list(args.args)


def _app_traceback(exc: BaseException) -> str:
    """The traceback without loopscope's and runpy's own frames, as Python would show it."""
    tb = exc.__traceback__
    skip = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_frame.f_code.co_filename in skip:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_in_process(target: list[str], trace_path: str, threshold_ms: float,
                   drain_timeout: float | None = None) -> int:
    """Run a script or module as ``__main__`` under the tracer; returns its exit status.

    ``trace_path`` is a trace file, or a trace folder (:func:`is_folder_output`).  Either
    way the Python programs the app starts are traced too (tracer.spawned), as its forked
    children are: into the folder, or beside the file."""
    if target[0] == "-m":
        module = target[1]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise UsageError(f"no module named {module!r}")
        argv = [found.origin or module, *target[2:]]
        sys.path[0] = os.getcwd()
    else:
        script = target[0]
        if not os.path.isfile(script):
            raise UsageError(f"cannot run {script}: no such file")
        argv = list(target)
        sys.path[0] = os.path.dirname(os.path.abspath(script))
    sys.argv = argv  # before start: the trace header records the app's argv
    folder = is_folder_output(trace_path)
    if folder:
        trace_path = folder_trace_path(trace_path)
    try:
        session = tracer.start(trace_path, threshold_ms, drain_timeout=drain_timeout,
                               folder=folder)
    except OutputError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write the trace {trace_path}: {e.strerror}") from None
    except BackendError as e:
        raise UsageError(str(e)) from None
    where = f"the folder {os.path.dirname(trace_path)}{os.sep} (this process: " \
        f"{os.path.basename(trace_path)})" if folder else trace_path
    print(f"loopscope: tracing to {where}", file=sys.stderr)
    from tracer import spawned
    spawned.propagate(session)
    adapters.install(session)
    code = 0
    try:
        if target[0] == "-m":
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(os.path.abspath(target[0]), run_name="__main__")
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException as e:  # noqa: BLE001 - the app's own crash, reported like Python does
        running = tracer.current()
        if running is not None:
            running.record_exception(e)
        sys.stderr.write(_app_traceback(e))
        code = 130 if isinstance(e, KeyboardInterrupt) else 1
    finally:
        adapters.uninstall()
        running = tracer.current()  # in a forked child: its own recording (tracer.session)
        tracer.stop()
        if running is not None:
            print(f"loopscope: {_trace_outcome(running)}", file=sys.stderr)
    return code


def _trace_outcome(session: Tracer) -> str:
    """The run's last line: where the trace is, and what is missing from it if anything."""
    missing = session.recorder.outcome()
    if missing is not None:
        return f"the trace {session.path} is incomplete: {missing}"
    if session.folder:
        folder = os.path.dirname(session.path)
        try:
            count = sum(name.endswith(".jsonl") for name in os.listdir(folder))
        except OSError:
            count = 1
        processes = f"{count} process{'es' if count != 1 else ''}"
        return f"trace written to {folder}{os.sep} ({processes}, one file each)"
    return f"trace written to {session.path}"


def _dashboard() -> ModuleType:
    """The dashboard's entry points (tui/launch.py), imported only when a command opens it."""
    try:
        from tui import launch
    except ImportError as e:
        raise UsageError(f"the dashboard is not available ({e})") from None
    return launch


# -- commands -----------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    target = split_target(args)
    path = args.output or default_trace_path(target)
    if args.tui and args.web:
        raise UsageError("--tui and --web are two ways to watch: choose one")
    if args.drain_timeout is not None:
        os.environ[DRAIN_TIMEOUT_ENV] = repr(args.drain_timeout)  # for a --tui / --web child too
    try:
        drain_timeout_from_env()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.otlp and (args.tui or args.web):
        raise UsageError("--otlp runs the app in this process: it does not go with --tui or --web")
    if args.tui:
        return _dashboard().run_app(target, path, args.threshold)
    if args.web:
        return run_served(target, path, args.threshold, args.port)
    if args.otlp:
        return run_sending_otlp(target, path, args)
    if args.otlp_endpoint or args.span_over is not None:
        raise UsageError("--otlp-endpoint and --span-over go with --otlp")
    return run_in_process(target, path, args.threshold, args.drain_timeout)


def run_sending_otlp(target: list[str], path: str, args: argparse.Namespace) -> int:
    """``run --otlp``: the app in this process, its trace sent live to the collector by a
    sidecar process (loopscope/otlp_live.py) that ends when the app has exited."""
    from loopscope import otlp_live
    endpoint = args.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        raise UsageError("--otlp needs --otlp-endpoint URL or $OTEL_EXPORTER_OTLP_ENDPOINT")
    options = ["--span-over", f"{args.span_over!r}"] if args.span_over is not None else []
    # A trace folder: the app's own file in it (this process's pid); the sidecar finds the
    # children's beside it.
    sent = os.path.join(path, f"{os.getpid()}.jsonl") if is_folder_output(path) else path
    # Started before tracing begins, it boots after: an empty LOOPSCOPE_PARENT_TRACE tells it
    # that it is not a traced child (tracer.spawned.adopt would take it for one).
    from tracer import spawned
    sidecar = subprocess.Popen([sys.executable, "-P", "-m", "loopscope.otlp_live", sent, endpoint,
                                *options], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               env={**os.environ, spawned.ENV: ""})
    try:
        return run_in_process(target, path, args.threshold, args.drain_timeout)
    finally:
        try:  # closing its stdin tells the sidecar that the app has exited: it drains and ends
            sidecar.communicate(timeout=otlp_live.DRAIN_S + otlp_live.POST_TIMEOUT_S + 1.0)
        except subprocess.TimeoutExpired:
            sidecar.kill()
            sidecar.wait()


def run_served(target: list[str], path: str, threshold_ms: float, port: int) -> int:
    """``run --web``: the app traced in a child process, its live dashboard served on
    127.0.0.1 until the server is stopped (which stops the app too)."""
    from loopscope.serve import ServeError, serve
    app = subprocess.Popen([sys.executable, "-P", "-m", "loopscope", "run", "-o", path,
                            "--threshold", f"{threshold_ms:g}", *target], stdin=subprocess.DEVNULL)
    try:
        serve(path, "127.0.0.1", port, allow_remote=False, live=True)
    except ServeError as e:
        raise UsageError(str(e)) from None
    finally:
        if app.poll() is None:
            app.terminate()  # the tracer finishes the trace on SIGTERM
        code = app.wait()
    return code


def cmd_summary(args: argparse.Namespace) -> int:
    if os.path.isdir(args.trace):
        from tracer import folder
        result = folder.summarize_folder(args.trace, args.threshold)
        text = folder.format_folder_text(result) if not args.json else ""
        callbacks = [c for p in result["processes"] for c in p["summary"]["callbacks"]]
    else:
        from tracer.index import indexed_summary
        from tracer.summary import format_text
        result = indexed_summary(args.trace, args.threshold)
        text = format_text(result) if not args.json else ""
        callbacks = result["callbacks"]
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(text)
    if args.fail_over is not None:
        worst = max((c["max_ms"] for c in callbacks), default=0.0)
        if worst > args.fail_over:
            print(f"loopscope: a callback blocked the loop for {worst:.1f} ms "
                  f"(over --fail-over {args.fail_over:g} ms)", file=sys.stderr)
            return 1
    return 0


def _write_file(out_path: str, write: Callable[[IO[bytes]], int]) -> int:
    """Run ``write`` into a new private file renamed to ``out_path`` once it is complete
    (tracer.files), so a failed export never leaves half a file; returns what ``write``
    returned."""
    try:
        return write_replacing(out_path, write)
    except OSError as e:
        raise UsageError(f"cannot write {out_path}: {e.strerror}") from None


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "otlp":
        return export_otlp(args)
    if args.endpoint or args.span_over is not None:
        raise UsageError("--endpoint and --span-over go with --format otlp")
    export: Callable[[str, IO[bytes]], int]
    if os.path.isdir(args.trace):
        from tracer.folder import export_folder_chrome, open_folder
        open_folder(args.trace, lambda message: None)  # refuse an empty folder before writing
        export = export_folder_chrome
        out_path = args.output or os.path.normpath(args.trace) + ".chrome.json"
    else:
        from tracer.export import export_chrome
        export = export_chrome
        out_path = args.output or os.path.splitext(args.trace)[0] + ".chrome.json"
    count = _write_file(out_path, lambda out: export(args.trace, out))
    print(f"loopscope: wrote {count} trace events to {out_path} (open it in ui.perfetto.dev)",
          file=sys.stderr)
    return 0


def export_otlp(args: argparse.Namespace) -> int:
    """OTLP/HTTP to the collector when an endpoint is given (or OTEL_EXPORTER_OTLP_ENDPOINT is
    set and no -o), else an OTLP/JSON file."""
    from tracer import otlp
    if os.path.isdir(args.trace):
        from tracer.folder import otlp_folder
        traces, metrics = otlp_folder(args.trace, args.span_over, args.service_name)
        default_out = os.path.normpath(args.trace) + ".otlp.jsonl"
    else:
        traces, metrics = otlp.build(args.trace, args.span_over, args.service_name)
        default_out = os.path.splitext(args.trace)[0] + ".otlp.jsonl"
    processes = len(metrics["resourceMetrics"])
    what = "3 metrics" + (f" of each of {processes} processes" if processes > 1 else "")
    endpoint = args.endpoint or (None if args.output else os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if endpoint:
        try:
            spans = otlp.send(traces, metrics, endpoint)
        except otlp.ExportError as e:
            raise UsageError(str(e)) from None
        print(f"loopscope: sent {spans} spans and {what} to {endpoint}", file=sys.stderr)
        return 0
    out_path = args.output or default_out
    spans = _write_file(out_path, lambda out: otlp.write_json(traces, metrics, out))
    print(f"loopscope: wrote {spans} spans and {what} as OTLP/JSON to {out_path}",
          file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise UsageError("--speed must be greater than 0")
    return _dashboard().replay(args.trace, args.speed)


def cmd_live(args: argparse.Namespace) -> int:
    return _dashboard().live(args.trace)


def cmd_serve(args: argparse.Namespace) -> int:
    from loopscope.serve import ServeError, serve
    from tracer.reader import read_header
    if os.path.isdir(args.trace):
        from tracer.folder import open_folder
        if not args.live:
            open_folder(args.trace)  # refuse a folder without traces before a browser asks
    elif not (args.live and not os.path.exists(args.trace)):
        read_header(args.trace)  # refuse a bad file before a browser ever asks for it
    try:
        serve(args.trace, args.host, args.port, args.allow_remote, live=args.live)
    except ServeError as e:
        raise UsageError(str(e)) from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    target = ["-m", "tracer.demo", f"{args.duration:g}"]
    return _dashboard().run_app(target, default_trace_path(target), 50.0)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _threshold(text: str) -> float:
    """A threshold in ms: positive and at most a day (a trace's header holds no more)."""
    value = _positive(text)
    if value > MAX_THRESHOLD_MS:
        raise argparse.ArgumentTypeError(f"{text!r} ms is more than a day")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds, 0 or more")
    return value


#: Shown under --help of every command that opens the dashboard.
#: The dashboard commands' --help ends with their keys, from the dashboard's own key table
#: (tui.keys imports nothing from Textual, so --help stays quick).
DASHBOARD_KEYS = help_text()


def version_text() -> str:
    """``loopscope X.Y.Z (Python 3.x, probe: ...)``: what a bug report needs to say."""
    try:
        probe = probe_backend()
    except BackendError as e:
        probe = str(e)
    return f"loopscope {loopscope.__version__} (Python {sys.version.split()[0]}, probe: {probe})"


class _VersionAction(argparse.Action):
    """``--version``, worked out only when asked: naming the probe loads it, and a parser
    that every command builds must not load the C extension (``summary`` never does)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


#: What the reading commands take.
TRACE_HELP = "a trace file, or a trace folder (one file per process of a run)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loopscope",
        description="Find the callbacks that block an event loop: record a trace of a reactor "
                    "app, then summarise, export, follow or replay it.")
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show loopscope's version and which probe records traces")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run", help="run an app under the tracer",
        description="Run a Python script (or -m MODULE) in this process as __main__, with its own "
                    "arguments, recording a trace of its reactor, and of every process it starts "
                    "(forked, multiprocessing, Python subprocesses): a trace folder with one "
                    "file per process, in traces/ unless -o says where; its path is printed on "
                    "stderr. The app's exit status is loopscope's.",
        usage="loopscope run [-h] [-o DIR/ | -o TRACE] [--threshold MS] [--tui | --web [--port N] | "
              "--otlp [--otlp-endpoint URL] [--span-over MS]] (SCRIPT | -m MODULE) [ARGS ...]")
    run.add_argument("-o", "--output", metavar="TRACE",
                     help="a new trace folder DIR/ (ending in /: one <pid>.jsonl per process), "
                          "or a trace file (child processes' traces beside it)")
    run.add_argument("--threshold", type=_threshold, default=50.0, metavar="MS",
                     help="a callback running longer than this blocks the loop (default 50)")
    run.add_argument("--drain-timeout", type=_seconds, metavar="S",
                     help=f"at exit, wait at most S seconds for the trace to be written (a slow "
                          f"reader of a FIFO), then count the rest as dropped (default "
                          f"{DRAIN_TIMEOUT:g}, or ${DRAIN_TIMEOUT_ENV})")
    run.add_argument("--tui", action="store_true",
                     help="run the app in a child process and watch it in the live dashboard")
    run.add_argument("--web", action="store_true",
                     help="run the app in a child process and serve its live dashboard to a "
                          "browser on 127.0.0.1 (see 'loopscope serve --help')")
    run.add_argument("--port", type=int, default=8000, help="port for --web (default 8000)")
    run.add_argument("--otlp", action="store_true",
                     help="send the trace live to an OpenTelemetry collector (OTLP/HTTP, "
                          "protobuf) while the app runs: the data of 'export --format otlp', "
                          "in batches about once a second, its child processes' too, from a separate "
                          "process that never holds the app up (oldest batches dropped when the "
                          "collector lags)")
    run.add_argument("--otlp-endpoint", metavar="URL",
                     help="the collector for --otlp, e.g. http://127.0.0.1:4318 (default: "
                          "$OTEL_EXPORTER_OTLP_ENDPOINT)")
    run.add_argument("--span-over", type=_positive, metavar="MS",
                     help="with --otlp, also send a span for every callback that ran at least "
                          "MS (default: only stalls)")
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, like python -m")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS ...]",
                     help="the script and its arguments")
    run.set_defaults(func=cmd_run)

    summary = sub.add_parser(
        "summary", help="report what blocked the loop",
        description="Print the blocking callbacks (longest first, at every nesting depth, with "
                    "where they blocked), per-callback statistics, loop health and Deferred "
                    "failures of a trace. --json prints the stable JSON form for scripts and CI.")
    summary.add_argument("trace", metavar="TRACE", help=TRACE_HELP)
    summary.add_argument("--json", action="store_true", help="print JSON (a stable contract)")
    summary.add_argument("--threshold", type=_threshold, metavar="MS",
                         help="re-evaluate blocking against this threshold instead of the recorded one")
    summary.add_argument("--fail-over", type=_positive, metavar="MS",
                         help="exit with status 1 when any callback ran longer than MS (a CI gate)")
    summary.set_defaults(func=cmd_summary)

    export = sub.add_parser(
        "export", help="convert a trace for Perfetto or an OpenTelemetry backend",
        description="Write the trace as Chrome trace-event JSON that ui.perfetto.dev opens "
                    "(callbacks as nested slices, stalls and marks as instants, loop health as "
                    "counters, Deferred and timer flows), or with --format otlp as OpenTelemetry "
                    "data: a span per stall (and per callback over --span-over MS) with its stack "
                    "samples as span events and a link to what scheduled it, plus loop metrics "
                    "(busy ratio, timer lag and callback duration histograms). OTLP goes to the "
                    "collector at --endpoint or $OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP, "
                    "protobuf), or into an OTLP/JSON file. A trace folder gives Perfetto a "
                    "process per pid, and OpenTelemetry one trace with a resource per process.")
    export.add_argument("trace", metavar="TRACE", help=TRACE_HELP)
    export.add_argument("-o", "--output", metavar="OUT",
                        help="output file (default: TRACE with .chrome.json, or .otlp.jsonl)")
    export.add_argument("--format", choices=("chrome", "otlp"), default="chrome",
                        help="chrome (default) or otlp")
    export.add_argument("--endpoint", metavar="URL",
                        help="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (otlp only)")
    export.add_argument("--span-over", type=_threshold, metavar="MS",
                        help="also send a span for every callback that ran at least MS (otlp "
                             "only; default: only stalls, since backends choke on floods)")
    export.add_argument("--service-name", metavar="NAME",
                        help="the service.name resource attribute (default: the script's name)")
    export.set_defaults(func=cmd_export)

    replay = sub.add_parser("replay", help="replay a saved trace in the dashboard",
                            description="Open a saved trace in the dashboard and play it back.",
                            epilog=DASHBOARD_KEYS)
    replay.add_argument("trace", metavar="TRACE", help=TRACE_HELP)
    replay.add_argument("--speed", type=_positive, default=1.0, metavar="X",
                        help="playback speed (default 1)")
    replay.set_defaults(func=cmd_replay)

    live = sub.add_parser("live", help="follow a trace another process is writing",
                          description="Open the dashboard on a trace that is still being "
                                      "written and follow it as it grows.",
                          epilog=DASHBOARD_KEYS)
    live.add_argument("trace", metavar="TRACE", help=TRACE_HELP)
    live.set_defaults(func=cmd_live)

    serve = sub.add_parser(
        "serve", help="serve the dashboard to a web browser",
        description="Serve the dashboard on TRACE to a browser (textual-serve): the same screen "
                    "and keys as replay (or live, with --live). Listens on 127.0.0.1 unless "
                    "--host says otherwise; any other address needs --allow-remote, since whoever "
                    "reaches the page reads the trace.",
        epilog=DASHBOARD_KEYS)
    serve.add_argument("trace", metavar="TRACE")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host that other machines can reach")
    serve.add_argument("--live", action="store_true",
                       help="follow a trace that is still being written")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the bundled blocking demo under the dashboard",
                          description="Run a small server and client that block the loop in "
                                      "several ways, traced, with the live dashboard.",
                          epilog=DASHBOARD_KEYS)
    demo.add_argument("--duration", type=_positive, default=10.0, metavar="S",
                      help="how long the demo app runs, in seconds (default 10)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loopscope`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (TraceError, UsageError) as e:
        print(f"loopscope: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``loopscope summary | head``): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
