"""The local stand-in for the cloud's BigQuery subscription: pull, map, insert, then ack.

Runs as its own process (`python -m app.bridge`), started and restarted by the local runner.
"""

from app.bridge.warehouse import Table, TableState, WarehouseProblem
from app.bridge.worker import Bridge, BridgeStats
from app.contract.table_row import DoesNotFit, RowMapper

__all__ = ["Bridge", "BridgeStats", "DoesNotFit", "RowMapper", "Table", "TableState", "WarehouseProblem"]
