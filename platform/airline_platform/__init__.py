"""The airline data platform's Pulumi components (named uniquely so `platform/` never shadows the stdlib)."""
