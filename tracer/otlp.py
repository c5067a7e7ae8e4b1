"""``loopscope export --format otlp``: a trace as OpenTelemetry spans and metrics.

What is sent: a span per stall (a loop-level call that ran past the blocking threshold) and,
when asked (``span_over_ms``), per callback that ran at least that long; never a span per
callback by default, because backends choke on floods.  A span carries its callback's code
location (``code.function``, ``code.filepath``, ``code.lineno``), the watchdog's stack samples
as span events, and a link to the call that scheduled the timer or created the Deferred it
ran for.  Loop health goes out as metrics: the busy ratio (a gauge, one point per loop
sample), timer lag and callback duration (histograms over the whole trace).

Two encodings of the same requests: OTLP/JSON (the JSON Lines file format of the
OpenTelemetry file exporter, one ``ExportTraceServiceRequest`` and one
``ExportMetricsServiceRequest`` per line) and OTLP/HTTP protobuf, which this module encodes
itself from the small part of the schema it uses (:data:`SCHEMA`), so that exporting needs no
protobuf library.  The requests are built once, as plain dicts in the OTLP/JSON mapping.
"""

from __future__ import annotations

import hashlib
import os
import struct
import urllib.error
import urllib.request
from typing import IO, Any

import orjson

from tracer.model import UNKNOWN_SITE, Site, site_of
from tracer.reader import Warn, read_trace, warn_stderr

SCOPE = {"name": "loopscope", "version": "1"}
#: Histogram bucket bounds in ms: from well under a millisecond to several seconds, which is
#: the range between a healthy callback and a badly stuck loop.
BOUNDS_MS = (0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0)
#: Spans per OTLP/HTTP request: a collector's default request limit is a few MB, and a span
#: with its stack samples is a few KB.
SPANS_PER_REQUEST = 256
HTTP_TIMEOUT_S = 10.0
SPAN_KIND_INTERNAL = 1
STATUS_ERROR = 2
CUMULATIVE = 2
FIXED64_MAX = (1 << 64) - 1

Json = dict[str, Any]


class ExportError(Exception):
    """A one-sentence reason why the export could not be delivered."""


# -- building the requests (OTLP/JSON mapping) ---------------------------------------------
def _attrs(**values: object) -> list[Json]:
    out = []
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        elif isinstance(value, float):
            out.append({"key": key, "value": {"doubleValue": value}})
        elif value is not None:
            out.append({"key": key, "value": {"stringValue": str(value)}})
    return out


def _site_attrs(site: Site) -> list[Json]:
    return _attrs(code__function=site.fn, code__filepath=site.file or None,
                  code__lineno=site.line or None)


class Spans:
    """Folds events into spans, remembering which call scheduled or created what."""

    def __init__(self, header: Json, threshold_ns: int, span_over_ns: int | None) -> None:
        self.base_ns = int(float(header.get("start_wall", 0.0)) * 1e9)
        #: The trace's id, from the process; a trace folder's processes share their first's.
        self.trace_id = trace_id_of(header)
        #: Which process of a trace folder this is (0 for a single trace): the top 16 bits of
        #: its span ids, which then are unique in the folder's trace (of up to 65,536).
        self.process = 0
        self.threshold_ns = threshold_ns
        self.span_over_ns = span_over_ns
        self.sites: dict[int, Site] = {}
        self.spans: list[Json] = []
        self._stalls: dict[tuple[int, int], list[Json]] = {}   # (depth, since) -> samples
        self._origin_of_timer: dict[int, tuple[int, int]] = {}  # timer -> (site, t scheduled)
        self._origin_of_deferred: dict[int, tuple[int, int]] = {}
        self._unplaced: list[tuple[int, dict[int, tuple[int, int]], int]] = []
        self._origin_span: dict[tuple[str, int], str] = {}      # ("timer"|"d", id) -> span id
        self.durations: list[int] = [0] * (len(BOUNDS_MS) + 1)
        self.duration_sum = 0.0
        self.lags: list[int] = [0] * (len(BOUNDS_MS) + 1)
        self.lag_sum = 0.0
        self.busy: list[Json] = []
        self.last_t = 0  # the latest event time, where the histograms end

    def site(self, site_id: int) -> Site:
        return self.sites.get(site_id, UNKNOWN_SITE)

    def unix_ns(self, t: int) -> str:
        """Trace time ``t`` as OTLP's Unix nanoseconds, clamped to what protobuf's fixed64
        holds (the times of a damaged trace may fall outside)."""
        return str(min(max(self.base_ns + t, 0), FIXED64_MAX))

    def span_id(self, index: int) -> str:
        return f"{self.process & 0xFFFF:04x}{index + 1:012x}"

    def apply(self, ev: Json, index: int) -> None:
        kind = ev["ev"]
        if kind == "site":
            self.sites[ev["id"]] = site_of(ev)
        elif kind == "timer":
            self._scheduled("timer", ev["id"], ev["site"], ev["t"])
        elif kind == "dnew":
            self._scheduled("d", ev["d"], ev["site"], ev["t"])
        elif kind == "stall":
            self._stalls.setdefault((ev["depth"], ev["since"]), []).append(ev)
        elif kind == "loop":
            dt = ev["dt"] or 1
            self.busy.append({"timeUnixNano": self.unix_ns(ev["t"]),
                              "asDouble": min(max(ev["busy"] / dt, 0.0), 1.0)})
        elif kind in ("call", "dcall"):
            self._ended(ev, index)

    def add(self, ev: Json, index: int, warn: Warn) -> None:
        """Fold the ``index``-th event in; an event that does not fit is skipped with a warning."""
        try:
            self.apply(ev, index)
        except (KeyError, TypeError, ValueError):
            warn(f"event {index + 2} could not be exported; skipped")
        t = ev.get("t", 0)
        if type(t) is int and t > self.last_t:
            self.last_t = t

    def take(self) -> tuple[list[Json], list[Json]]:
        """The spans and busy-ratio points completed since the previous call, for sending
        them in batches while the trace is still being written."""
        spans, busy = self.spans, self.busy
        self.spans, self.busy = [], []
        return spans, busy

    def _scheduled(self, what: str, ident: int, site: int, t: int) -> None:
        table = self._origin_of_timer if what == "timer" else self._origin_of_deferred
        table[ident] = (site, t)
        self._unplaced.append((t, table, ident))

    def _ended(self, ev: Json, index: int) -> None:
        dur, depth, t = ev["dur"], ev["depth"], ev["t"]
        start = t - dur
        if depth == 0:
            # Whatever was scheduled during this call was scheduled by it: calls are written
            # when they end, so the scheduled things wait here until the call that ran them.
            for t_scheduled, table, ident in self._unplaced:
                if t_scheduled >= start:
                    what = "timer" if table is self._origin_of_timer else "d"
                    self._origin_span[(what, ident)] = self.span_id(index)
            self._unplaced.clear()
        self._histogram(self.durations, dur)
        self.duration_sum += dur / 1e6
        lag = ev.get("lag")
        if lag is not None:
            self._histogram(self.lags, lag)
            self.lag_sum += lag / 1e6
        samples = self._stalls.pop((depth, start), [])
        blocking = dur > self.threshold_ns
        wanted = (blocking and depth == 0) or (self.span_over_ns is not None
                                               and dur >= self.span_over_ns)
        if not wanted:
            return
        site = self.site(ev["site"])
        kind = ev.get("kind", "deferred")
        key: tuple[str, int] | None = (
            ("timer", ev["timer"]) if "timer" in ev else ("d", ev["d"]) if "d" in ev else None)
        origin: tuple[int, int] | None = None
        if key is not None:
            table = self._origin_of_timer if key[0] == "timer" else self._origin_of_deferred
            origin = table.pop(key[1], None)
        span: Json = {
            "traceId": self.trace_id, "spanId": self.span_id(index),
            "name": ("blocked: " if blocking else "") + site.fn,
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": self.unix_ns(start),
            "endTimeUnixNano": self.unix_ns(t),
            "attributes": _site_attrs(site) + _attrs(
                loopscope__kind=kind, loopscope__depth=depth, loopscope__blocking=blocking,
                loopscope__duration_ms=round(dur / 1e6, 3)),
            "events": [self._sample(s) for s in samples],
        }
        if blocking:
            span["status"] = {"code": STATUS_ERROR,
                              "message": f"blocked the event loop for {dur / 1e6:.1f} ms"}
        origin_span = self._origin_span.pop(key, None) if key is not None else None
        if origin is not None:
            origin_site = self.site(origin[0])
            span["attributes"] += _attrs(loopscope__origin__function=origin_site.fn,
                                         loopscope__origin__filepath=origin_site.file or None,
                                         loopscope__origin__lineno=origin_site.line or None)
            if origin_span is not None:  # the call that ran callLater() or Deferred()
                span["links"] = [{"traceId": self.trace_id, "spanId": origin_span,
                                  "attributes": _site_attrs(origin_site) + _attrs(
                                      loopscope__link="scheduled by" if key and key[0] == "timer"
                                      else "created by")}]
        self.spans.append(span)

    def _sample(self, stall: Json) -> Json:
        stack = stall["stack"]
        text = "\n".join(f'  File "{f}", line {line}, in {func}' for f, line, func in stack)
        innermost = stack[-1] if stack else ["", 0, ""]
        return {"timeUnixNano": self.unix_ns(stall["t"]), "name": "stall sample",
                "attributes": _attrs(code__stacktrace=text, code__filepath=innermost[0] or None,
                                     code__lineno=innermost[1] or None,
                                     code__function=innermost[2] or None,
                                     loopscope__blocked_ms=round(stall["blocked"] / 1e6, 3))}

    @staticmethod
    def _histogram(counts: list[int], ns: int) -> None:
        ms = ns / 1e6
        for i, bound in enumerate(BOUNDS_MS):
            if ms <= bound:
                counts[i] += 1
                return
        counts[-1] += 1


def _histogram_metric(name: str, description: str, counts: list[int], total_ms: float,
                      start: str, end: str) -> Json:
    return {"name": name, "description": description, "unit": "ms",
            "histogram": {"aggregationTemporality": CUMULATIVE, "dataPoints": [{
                "startTimeUnixNano": start, "timeUnixNano": end, "count": str(sum(counts)),
                "sum": total_ms, "bucketCounts": [str(c) for c in counts],
                "explicitBounds": list(BOUNDS_MS)}]}}


def trace_id_of(header: Json) -> str:
    """The OTLP trace id of the process that ``header`` starts."""
    seed = f"{header.get('pid')}:{header.get('start_wall')}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def new_spans(header: Json, span_over_ms: float | None) -> Spans:
    """A span builder for the trace that ``header`` starts."""
    threshold = float(header.get("threshold_ms", 50.0))
    return Spans(header, int(threshold * 1e6),
                  None if span_over_ms is None else int(span_over_ms * 1e6))


def resource(header: Json, service: str | None = None) -> Json:
    """The OTLP resource of the traced process (service name, pid, runtime, command)."""
    argv = header.get("argv") or ["app"]
    return {"attributes": _attrs(
        service__name=service or os.path.basename(str(argv[0])) or "app",
        process__pid=header.get("pid"), process__runtime__name="CPython",
        process__runtime__version=header.get("python"),
        process__command_args=" ".join(str(a) for a in argv),
        process__parent_pid=header.get("ppid") if type(header.get("ppid")) is int else None,
        loopscope__threshold_ms=float(header.get("threshold_ms", 50.0)))}


def trace_requests(res: Json, spans: list[Json]) -> list[Json]:
    """``spans`` as ExportTraceServiceRequests of at most :data:`SPANS_PER_REQUEST` spans."""
    batches = [spans[i:i + SPANS_PER_REQUEST]
               for i in range(0, len(spans), SPANS_PER_REQUEST)] or [[]]
    return [{"resourceSpans": [{"resource": res,
                                "scopeSpans": [{"scope": SCOPE, "spans": batch}]}]}
            for batch in batches]


def metrics_request(res: Json, spans: Spans, busy: list[Json]) -> Json:
    """The loop metrics so far: ``busy`` gauge points, and the histograms since the start
    (cumulative, so a request sent later replaces an earlier one)."""
    start, end = spans.unix_ns(0), spans.unix_ns(spans.last_t)
    metrics = [
        {"name": "loopscope.loop.busy_ratio", "unit": "1",
         "description": "share of each 100 ms the loop spent outside its poller",
         "gauge": {"dataPoints": busy}},
        _histogram_metric("loopscope.timer.lag", "how late timers started", spans.lags,
                          spans.lag_sum, start, end),
        _histogram_metric("loopscope.callback.duration", "how long callbacks ran",
                          spans.durations, spans.duration_sum, start, end),
    ]
    return {"resourceMetrics": [{"resource": res,
                                 "scopeMetrics": [{"scope": SCOPE, "metrics": metrics}]}]}


def build(path: str, span_over_ms: float | None = None, service: str | None = None,
          warn: Warn = warn_stderr, trace_id: str | None = None,
          process: int = 0) -> tuple[list[Json], Json]:
    """The trace requests (batches of spans) and the metrics request for the trace file;
    ``trace_id`` and ``process`` place it in a trace folder's trace (Spans says how)."""
    header, events = read_trace(path, warn)
    spans = new_spans(header, span_over_ms)
    spans.trace_id = trace_id or spans.trace_id
    spans.process = process
    for index, ev in enumerate(events):
        spans.add(ev, index, warn)
    res = resource(header, service)
    return trace_requests(res, spans.spans), metrics_request(res, spans, spans.busy)


def write_json(traces: list[Json], metrics: Json, out: IO[bytes]) -> int:
    """Write the requests as OTLP/JSON lines; returns the number of spans."""
    spans = 0
    for request in traces:
        spans += len(request["resourceSpans"][0]["scopeSpans"][0]["spans"])
        out.write(orjson.dumps(request) + b"\n")
    out.write(orjson.dumps(metrics) + b"\n")
    return spans


# -- OTLP protobuf encoding ----------------------------------------------------------------
# (message, JSON field) -> (field number, wire kind, message type of a nested field).  Wire
# kinds: "msg" nested message, "str", "hex" (bytes written as hex in JSON), "fixed64" and
# "double" (scalars; repeated ones packed), "enum" / "int" (varints), "bool".
SCHEMA: dict[str, dict[str, tuple[int, str, str]]] = {
    "ExportTraceServiceRequest": {"resourceSpans": (1, "msg", "ResourceSpans")},
    "ResourceSpans": {"resource": (1, "msg", "Resource"), "scopeSpans": (2, "msg", "ScopeSpans")},
    "Resource": {"attributes": (1, "msg", "KeyValue")},
    "ScopeSpans": {"scope": (1, "msg", "InstrumentationScope"), "spans": (2, "msg", "Span")},
    "InstrumentationScope": {"name": (1, "str", ""), "version": (2, "str", "")},
    "Span": {"traceId": (1, "hex", ""), "spanId": (2, "hex", ""), "name": (5, "str", ""),
             "kind": (6, "enum", ""), "startTimeUnixNano": (7, "fixed64", ""),
             "endTimeUnixNano": (8, "fixed64", ""), "attributes": (9, "msg", "KeyValue"),
             "events": (11, "msg", "Event"), "links": (13, "msg", "Link"),
             "status": (15, "msg", "Status")},
    "Event": {"timeUnixNano": (1, "fixed64", ""), "name": (2, "str", ""),
              "attributes": (3, "msg", "KeyValue")},
    "Link": {"traceId": (1, "hex", ""), "spanId": (2, "hex", ""),
             "attributes": (4, "msg", "KeyValue")},
    "Status": {"message": (2, "str", ""), "code": (3, "enum", "")},
    "KeyValue": {"key": (1, "str", ""), "value": (2, "msg", "AnyValue")},
    "AnyValue": {"stringValue": (1, "str", ""), "boolValue": (2, "bool", ""),
                 "intValue": (3, "int", ""), "doubleValue": (4, "double", "")},
    "ExportMetricsServiceRequest": {"resourceMetrics": (1, "msg", "ResourceMetrics")},
    "ResourceMetrics": {"resource": (1, "msg", "Resource"),
                        "scopeMetrics": (2, "msg", "ScopeMetrics")},
    "ScopeMetrics": {"scope": (1, "msg", "InstrumentationScope"), "metrics": (2, "msg", "Metric")},
    "Metric": {"name": (1, "str", ""), "description": (2, "str", ""), "unit": (3, "str", ""),
               "gauge": (5, "msg", "Gauge"), "histogram": (9, "msg", "Histogram")},
    "Gauge": {"dataPoints": (1, "msg", "NumberDataPoint")},
    "NumberDataPoint": {"startTimeUnixNano": (2, "fixed64", ""), "timeUnixNano": (3, "fixed64", ""),
                        "asDouble": (4, "double", "")},
    "Histogram": {"dataPoints": (1, "msg", "HistogramDataPoint"),
                  "aggregationTemporality": (2, "enum", "")},
    "HistogramDataPoint": {"startTimeUnixNano": (2, "fixed64", ""), "timeUnixNano": (3, "fixed64", ""),
                           "count": (4, "fixed64", ""), "sum": (5, "double", ""),
                           "bucketCounts": (6, "fixed64", ""), "explicitBounds": (7, "double", "")},
}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _scalar(kind: str, value: Any) -> tuple[int, bytes]:
    """Wire type and bytes of one scalar value."""
    if kind == "fixed64":
        return 1, struct.pack("<Q", int(value))
    if kind == "double":
        return 1, struct.pack("<d", float(value))
    if kind in ("enum", "int"):
        return 0, _varint(int(value))
    if kind == "bool":
        return 0, _varint(1 if value else 0)
    data = bytes.fromhex(value) if kind == "hex" else str(value).encode()
    return 2, _varint(len(data)) + data


def encode(message: str, obj: Json) -> bytes:
    """``obj`` (an OTLP/JSON dict of type ``message``) in protobuf's wire format."""
    fields = SCHEMA[message]
    out = bytearray()
    for name, value in obj.items():
        number, kind, nested = fields[name]
        values = value if isinstance(value, list) else [value]
        if kind == "msg":
            for item in values:
                data = encode(nested, item)
                out += _key(number, 2) + _varint(len(data)) + data
        elif isinstance(value, list) and kind in ("fixed64", "double"):
            packed = b"".join(_scalar(kind, v)[1] for v in values)
            out += _key(number, 2) + _varint(len(packed)) + packed
        else:
            for item in values:
                wire, data = _scalar(kind, item)
                out += _key(number, wire) + data
    return bytes(out)


def send(traces: list[Json], metrics: Json, endpoint: str) -> int:
    """POST the requests to an OTLP/HTTP collector (``/v1/traces``, ``/v1/metrics`` under
    ``endpoint``); returns the number of spans sent."""
    base = endpoint.rstrip("/")
    spans = 0
    for request in traces:
        spans += len(request["resourceSpans"][0]["scopeSpans"][0]["spans"])
        post(f"{base}/v1/traces", encode("ExportTraceServiceRequest", request))
    post(f"{base}/v1/metrics", encode("ExportMetricsServiceRequest", metrics))
    return spans


def post(url: str, body: bytes, timeout_s: float = HTTP_TIMEOUT_S) -> None:
    """POST one protobuf request; raises ExportError when the collector does not take it."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as e:
        raise ExportError(f"the collector at {url} answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ExportError(f"cannot reach the collector at {url}: {reason}") from None

