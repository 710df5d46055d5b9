"""The warehouse side of the bridge: insert rows and tell a bad row from a table or server problem.

In the cloud a BigQuery subscription dead-letters only messages that cannot be written; a
table it cannot write to at all (missing, permission denied, incompatible schema) becomes the
subscription's *state* (`NOT_FOUND`, `PERMISSION_DENIED`, `SCHEMA_MISMATCH`) while the messages
wait in the subscription, and a server that is unwell is simply retried. This module sorts
every answer of `insertAll` into those classes so the bridge can do the same:

- a row the warehouse refuses (a per-row `invalid` error) does not fit: its message is nacked;
- rows not stored for someone else's fault (per-row `stopped`, `backendError`, ...) are retried;
- anything else raises `WarehouseProblem` with the table's state: the caller holds the messages,
  backs off and tries again. Only a 500 or 400 for the request as a whole *may* be a bad row
  (bqemulator answers 500 for a batch with one row it cannot convert); `row_suspect` says so,
  and `probe()` tells whether the server and the table are fine, in which case the row is to
  blame, or not, in which case the server is.

Inserts use `skipInvalidRows`, so the rows that fit are stored even when others in the batch do
not (bqemulator then reports conversion failures per row instead of failing the request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.api_core.exceptions import GoogleAPICallError, InternalServerError, RetryError
from google.api_core.retry import Retry
from google.cloud import bigquery

from app.contract.warehouse_schema import table_schema
from app.gcp_errors import GOOGLE_CALL_ERRORS, Failure, classify

# The bridge retries itself, holding the messages, with jittered backoff: no hidden retries.
NO_RETRY = Retry(predicate=lambda _exc: False)


class TableState(StrEnum):
    """The cloud's BigQuery subscription states, plus UNAVAILABLE for a warehouse that does not answer."""

    ACTIVE = "ACTIVE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    # Local only: the cloud retries an unwell server silently and stays ACTIVE.
    UNAVAILABLE = "UNAVAILABLE"


class WarehouseProblem(Exception):
    """The request as a whole failed; nothing in it was stored."""

    def __init__(self, state: TableState, detail: str, *, row_suspect: bool = False) -> None:
        super().__init__(f"{state}: {detail}")
        self.state = state
        self.detail = detail
        self.row_suspect = row_suspect


@dataclass
class InsertResult:
    """Per-row outcome of one insert; indexes not listed were stored."""

    refused: dict[int, str] = field(default_factory=dict)  # the row does not fit: dead-letter path
    retry: list[int] = field(default_factory=list)  # not stored, through no fault of the row


_SCHEMA_WORDS = re.compile(r"no such field|schema|column", re.IGNORECASE)
_TYPE_ALIASES = {"INT64": "INTEGER", "BOOL": "BOOLEAN", "FLOAT64": "FLOAT"}


def problem_from(exc: BaseException) -> WarehouseProblem:
    """The table's state after a failed request, from the one classification of Google's errors.

    A request the warehouse calls invalid is a schema mismatch when it says so, else maybe one bad
    row (`row_suspect`: the caller probes); so is a bare 500 (bqemulator's answer to a row it
    cannot convert). Anything unavailable (throttling included) is retried with the messages held.
    """
    cause: BaseException = exc.cause if isinstance(exc, RetryError) and exc.cause is not None else exc
    detail = f"{type(cause).__name__}: {str(cause)[:300]}"
    failure = classify(cause)
    if failure is Failure.NOT_FOUND:
        return WarehouseProblem(TableState.NOT_FOUND, detail)
    if failure is Failure.PERMISSION_DENIED:
        return WarehouseProblem(TableState.PERMISSION_DENIED, detail)
    if failure is Failure.INVALID:
        if _SCHEMA_WORDS.search(str(cause)):
            return WarehouseProblem(TableState.SCHEMA_MISMATCH, detail)
        return WarehouseProblem(
            TableState.UNAVAILABLE, detail, row_suspect=isinstance(cause, GoogleAPICallError)
        )
    # InternalServerError is exactly 500; 502/503/504 and 429 are other classes: never a row's fault.
    return WarehouseProblem(TableState.UNAVAILABLE, detail, row_suspect=type(cause) is InternalServerError)


def schema_mismatch(live: list[dict[str, Any]], expected: list[dict[str, Any]] | None = None) -> str | None:
    """Why the live table cannot take the subscription's rows, or None if it can.

    Every column the bridge writes must exist with the same type and must not be REQUIRED where
    the contract allows NULL; any other column of the table must be NULLABLE. `maxLength` and
    descriptions are not compared (bqemulator drops `maxLength`; the bridge enforces it itself).
    """
    by_name = {c["name"]: c for c in live}
    for column in expected if expected is not None else table_schema():
        found = by_name.pop(column["name"], None)
        if found is None:
            return f"the table has no column {column['name']}"
        found_type = _TYPE_ALIASES.get(found["type"], found["type"])
        if found_type != column["type"]:
            return f"column {column['name']} is {found_type}, the subscription writes {column['type']}"
        if found.get("mode") == "REQUIRED" and column.get("mode") != "REQUIRED":
            return f"column {column['name']} is REQUIRED but may be NULL in the messages"
    extra = [name for name, c in by_name.items() if c.get("mode") == "REQUIRED"]
    return f"REQUIRED column(s) the messages never fill: {', '.join(extra)}" if extra else None


class Table:
    """One table, written with `insertAll`; every call has a timeout and no hidden retry."""

    def __init__(self, client: bigquery.Client, table_id: str, *, timeout_seconds: float = 20.0) -> None:
        self.client = client
        self.table_id = table_id
        self._timeout = timeout_seconds

    def probe(self) -> None:
        """Return if the table exists, answers and fits the subscription; else raise WarehouseProblem."""
        try:
            table = self.client.get_table(self.table_id, timeout=min(5.0, self._timeout), retry=NO_RETRY)
        except GOOGLE_CALL_ERRORS as exc:
            problem = problem_from(exc)
            raise WarehouseProblem(problem.state, problem.detail) from exc  # a probe never blames a row
        reason = schema_mismatch([f.to_api_repr() for f in table.schema])
        if reason:
            raise WarehouseProblem(TableState.SCHEMA_MISMATCH, reason)

    def insert(self, rows: list[dict[str, Any]], row_ids: list[str]) -> InsertResult:
        """Insert rows (insert ids = message ids); raise WarehouseProblem if the request failed."""
        try:
            errors = self.client.insert_rows_json(
                self.table_id,
                rows,
                row_ids=row_ids,
                skip_invalid_rows=True,
                timeout=self._timeout,
                retry=NO_RETRY,
            )
        except GOOGLE_CALL_ERRORS as exc:
            raise problem_from(exc) from exc
        result = InsertResult()
        for error in errors:
            index = int(error["index"])
            reasons = error.get("errors") or [{}]
            invalid = [e for e in reasons if e.get("reason") == "invalid"]
            if invalid:
                where = invalid[0].get("location") or "row"
                result.refused[index] = f"warehouse refused {where}: {invalid[0].get('message', '')[:200]}"
            else:
                result.retry.append(index)
        return result
