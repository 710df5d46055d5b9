"""The HTTP API: reads flights from the warehouse, accepts events onto the ingest topic."""
