"""The BigQuery table schema, derived from the flight event contract.

Returned in the BigQuery REST `TableFieldSchema` form, which both the Pulumi program
(`schema=json.dumps(...)`) and google-cloud-bigquery (`SchemaField.from_api_repr`) take.
"""

from __future__ import annotations

from app.contract.flight_event import contract_fields

BIGQUERY_TYPES = {"string": "STRING", "integer": "INTEGER", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP"}

# Columns a BigQuery subscription fills when `write_metadata` is on (Pub/Sub documentation).
METADATA_COLUMNS: tuple[dict[str, str], ...] = (
    {
        "name": "subscription_name",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Pub/Sub subscription that wrote the row.",
    },
    {"name": "message_id", "type": "STRING", "mode": "NULLABLE", "description": "Pub/Sub message id."},
    {"name": "publish_time", "type": "TIMESTAMP", "mode": "NULLABLE", "description": "Pub/Sub publish time."},
    {
        "name": "attributes",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Message attributes as a JSON object.",
    },
)


def event_columns() -> list[dict[str, str]]:
    """One column per contract field, REQUIRED unless the field is nullable.

    A string's maximum length becomes the column's `maxLength` (BigQuery's STRING(n)), so an
    oversized value is refused by the warehouse, not stored and then hidden by the API.
    """
    columns = []
    for f in contract_fields():
        column = {
            "name": f.name,
            "type": BIGQUERY_TYPES[f.kind],
            "mode": "NULLABLE" if f.nullable else "REQUIRED",
            "description": f.description,
        }
        if f.max_length is not None:
            column["maxLength"] = str(f.max_length)  # the REST API's int64-as-string form
        columns.append(column)
    return columns


def table_schema() -> list[dict[str, str]]:
    """The full table: event columns, then the subscription's metadata columns."""
    return event_columns() + [dict(c) for c in METADATA_COLUMNS]
