"""Synthetic traffic: the deploy canary's and the post-deploy fuzzer's events, kept out of analysts' data.

A synthetic event is published with the message attribute `synthetic: "true"`. The BigQuery
subscription's `write_metadata` stores a message's attributes as a JSON object in the table's
`attributes` column (https://cloud.google.com/pubsub/docs/bigquery#write-metadata), and the local
bridge stores them the same way, so the mark travels with the row without a column of its own.
The analysts' view and the API's default reads keep only rows without the mark (`REAL_ROWS_SQL`);
the API reads synthetic rows too when asked (`?synthetic=include`), which is how the canary proves
its own events end to end. docs/api.md ("Synthetic traffic") says who may mark an event and why.
"""

from __future__ import annotations

ATTRIBUTE = "synthetic"
MARK = "true"
# The request header that asks the API to mark a published event (POST /v1/events).
HEADER = "X-Synthetic"
# The query value that makes a read include synthetic rows (GET /v1/flights, /v1/flights/{id}).
INCLUDE = "include"
# Rows from unmarked messages. JSON_VALUE reads a JSON-formatted STRING column
# (https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#json_value);
# a row without attributes (NULL) is real.
REAL_ROWS_SQL = f"COALESCE(JSON_VALUE(attributes, '$.{ATTRIBUTE}'), '') != '{MARK}'"


def attributes(synthetic: bool) -> dict[str, str]:
    """The message attributes that mark (or do not mark) an event as synthetic."""
    return {ATTRIBUTE: MARK} if synthetic else {}
