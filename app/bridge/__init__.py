"""The local stand-in for the cloud's BigQuery subscription: pull, map, insert, then ack."""

from app.bridge.mapping import DoesNotFit, RowMapper
from app.bridge.worker import Bridge, BridgeStats

__all__ = ["Bridge", "BridgeStats", "DoesNotFit", "RowMapper"]
