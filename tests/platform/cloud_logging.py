"""Log entries as Cloud Logging stores them, and the part of its query language our filters use.

`container_entry` turns one JSON line the API prints into the `LogEntry` Cloud Logging builds
from it on Cloud Run: the special fields are lifted out of `jsonPayload` into the entry
(https://cloud.google.com/logging/docs/structured-logging#special-payload-fields; Google's
client library has no table of them to import, so the table below cites the page), and the
values the API sets are checked against Google's own protos (`google.logging.type`'s
`HttpRequest` and `LogSeverity`, from googleapis-common-protos). `request_entry` is the entry
Cloud Run writes itself for every request it serves (`run.googleapis.com/requests`,
https://cloud.google.com/run/docs/logging).

`matches` and `extract` evaluate a filter and an `EXTRACT`/`REGEXP_EXTRACT` extractor with the
rules of https://cloud.google.com/logging/docs/view/logging-query-language: comparisons
(`=`, `!=`, `<`, `<=`, `>`, `>=`, `:` has, `:*` present), `NOT` binding tightest, then `OR`, then
`AND` (adjacent terms are joined by `AND`), parentheses. Anything else is refused loudly rather
than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.logging.type import http_request_pb2, log_severity_pb2
from google.protobuf import json_format

PROJECT = "airline-test"
STDOUT = f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
REQUESTS = f"projects/{PROJECT}/logs/run.googleapis.com%2Frequests"
# JSON key -> LogEntry field, as the structured-logging page lists them.
SPECIAL_FIELDS = {
    "severity": "severity",
    "httpRequest": "httpRequest",
    "time": "timestamp",
    "timestamp": "timestamp",
    "logging.googleapis.com/insertId": "insertId",
    "logging.googleapis.com/labels": "labels",
    "logging.googleapis.com/operation": "operation",
    "logging.googleapis.com/sourceLocation": "sourceLocation",
    "logging.googleapis.com/spanId": "spanId",
    "logging.googleapis.com/trace": "trace",
    "logging.googleapis.com/trace_sampled": "traceSampled",
}


def resource(service: str, region: str = "europe-west1") -> dict[str, Any]:
    """The monitored resource of a Cloud Run service's entries."""
    return {
        "type": "cloud_run_revision",
        "labels": {
            "project_id": PROJECT,
            "service_name": service,
            "revision_name": f"{service}-00001-abc",
            "configuration_name": service,
            "location": region,
        },
    }


def container_entry(line: Mapping[str, Any], service: str) -> dict[str, Any]:
    """The `LogEntry` of one JSON line the container printed to stdout."""
    payload = dict(line)
    entry: dict[str, Any] = {"logName": STDOUT, "resource": resource(service)}
    for key, field in SPECIAL_FIELDS.items():
        if key in payload:
            entry[field] = payload.pop(key)
    if "severity" in entry:
        log_severity_pb2.LogSeverity.Value(entry["severity"])  # raises on a name Google does not know
    if "httpRequest" in entry:
        json_format.ParseDict(entry["httpRequest"], http_request_pb2.HttpRequest())  # rejects unknown keys
    entry["jsonPayload"] = payload
    return entry


def request_entry(
    service: str, method: str, url: str, status: int, trace: str | None = None
) -> dict[str, Any]:
    """The request log entry Cloud Run writes for a request it served (fields per its docs)."""
    http = {
        "requestMethod": method,
        "requestUrl": url,
        "status": status,
        "responseSize": "512",
        "latency": "0.012s",
        "userAgent": "test-client/1.0",
        "remoteIp": "203.0.113.9",
        "protocol": "HTTP/1.1",
    }
    json_format.ParseDict(http, http_request_pb2.HttpRequest())
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    entry = {"logName": REQUESTS, "resource": resource(service), "httpRequest": http, "severity": severity}
    if trace:
        entry["trace"] = trace
    return entry


# --- the query language --------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>:\*|!=|>=|<=|[=<>:()])|(?P<word>[^\s=<>:()!"]+))'
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read the filter at {text[pos:]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match[kind]))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens, self.i = _tokens(text), 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ValueError("the filter ends too early")
        self.i += 1
        return token

    def conjunction(self) -> Any:
        terms = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("op", ")"):
            if token == ("word", "AND"):
                self.take()
            terms.append(self.disjunction())  # adjacent terms: an implicit AND
        return ("and", terms)

    def disjunction(self) -> Any:
        terms = [self.negation()]
        while self.peek() == ("word", "OR"):
            self.take()
            terms.append(self.negation())
        return ("or", terms)

    def negation(self) -> Any:
        if self.peek() == ("word", "NOT"):
            self.take()
            return ("not", self.negation())
        if self.peek() == ("op", "("):
            self.take()
            inner = self.conjunction()
            if self.take() != ("op", ")"):
                raise ValueError("unbalanced parentheses")
            return inner
        return self.comparison()

    def comparison(self) -> Any:
        kind, path = self.take()
        if kind != "word":
            raise ValueError(f"expected a field, got {path!r}")
        kind, op = self.take()
        if kind != "op" or op in "()":
            raise ValueError(f"expected a comparison after {path}, got {op!r}")
        if op == ":*":
            return ("present", path)
        if self.peek() == ("op", "("):  # field=(a OR b): any of the values
            self.take()
            values = [self.value(path, op)]
            while self.take() == ("word", "OR"):
                values.append(self.value(path, op))
            return ("or", [("compare", path, op, v) for v in values])
        return ("compare", path, op, self.value(path, op))

    def value(self, path: str, op: str) -> str:
        kind, value = self.take()
        if kind == "string":
            value = value[1:-1].replace('\\"', '"')
        elif kind != "word":
            raise ValueError(f"expected a value after {path}{op}, got {value!r}")
        return value


def _segments(path: str) -> list[str]:
    return [part.strip('"') for part in re.findall(r'"[^"]*"|[^.]+', path)]


def resolve(entry: Mapping[str, Any], path: str) -> Any:
    value: Any = entry
    for part in _segments(path):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _compare(field: Any, op: str, value: str) -> bool:
    if field is None:
        return op == "!="
    if op == ":":
        return value.lower() in str(field).lower()
    left: Any
    right: Any
    if isinstance(field, bool):
        left, right = str(field).lower(), value.lower()
    elif isinstance(field, int | float):
        left, right = field, float(value)
    elif op in ("<", "<=", ">", ">=") and value in log_severity_pb2.LogSeverity.keys():  # noqa: SIM118 (an EnumTypeWrapper, not a dict)
        left, right = log_severity_pb2.LogSeverity.Value(field), log_severity_pb2.LogSeverity.Value(value)
    else:
        left, right = str(field), value
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _evaluate(node: Any, entry: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return all(_evaluate(n, entry) for n in node[1])
    if kind == "or":
        return any(_evaluate(n, entry) for n in node[1])
    if kind == "not":
        return not _evaluate(node[1], entry)
    if kind == "present":
        return resolve(entry, node[1]) is not None
    _, path, op, value = node
    return _compare(resolve(entry, path), op, value)


def matches(entry: Mapping[str, Any], log_filter: str) -> bool:
    """Whether Cloud Logging's filter selects the entry."""
    parser = _Parser(log_filter)
    tree = parser.conjunction()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()} in {log_filter!r}")
    return _evaluate(tree, entry)


_EXTRACTOR = re.compile(
    r'^(?:EXTRACT\((?P<field>[^,)]+)\)|REGEXP_EXTRACT\((?P<rfield>[^,]+),\s*"(?P<re>.*)"\))$'
)


def extract(entry: Mapping[str, Any], extractor: str) -> Any:
    """The value a log-based metric's label or value extractor takes from the entry (None if absent)."""
    parsed = _EXTRACTOR.match(extractor)
    if not parsed:
        raise ValueError(f"not an extractor this evaluator knows: {extractor!r}")
    if parsed["field"]:
        return resolve(entry, parsed["field"].strip())
    value = resolve(entry, parsed["rfield"].strip())
    found = re.search(parsed["re"].replace("\\\\", "\\"), str(value)) if value is not None else None
    return found[1] if found else None
