"""The local stack's delivery timing differs from the cloud's only where documented, and says so.

docs/ingest.md explains each difference: no retry policy (the emulator's stalls redeliveries),
20 delivery attempts (crashes of the local bridge spend attempts), a 10 s ack deadline (the
bridge's lease). Everything else, and the cloud's own settings, must stay as they are.
"""

from __future__ import annotations

from dataclasses import asdict

from app.bridge.leases import LEASE_SECONDS
from app.contract.pipeline import PIPELINE
from app.local.__main__ import _delivery_policy
from app.local.stack import LOCAL_PIPELINE, LocalStackConfig


def test_the_local_pipeline_differs_from_the_clouds_only_in_delivery_timing():
    cloud, local = asdict(PIPELINE), asdict(LOCAL_PIPELINE)
    changed = {name for name in cloud if cloud[name] != local[name]}
    assert changed == {
        "ack_deadline_seconds",
        "max_delivery_attempts",
        "retry_minimum_backoff_seconds",
        "retry_maximum_backoff_seconds",
    }
    assert (PIPELINE.ack_deadline_seconds, PIPELINE.max_delivery_attempts) == (60, 5)
    assert (PIPELINE.retry_minimum_backoff_seconds, PIPELINE.retry_maximum_backoff_seconds) == (10, 600)
    assert PIPELINE.has_retry_policy
    assert not LOCAL_PIPELINE.has_retry_policy
    assert LOCAL_PIPELINE.ack_deadline_seconds == LEASE_SECONDS, "a dead bridge's messages come back"


def test_make_run_prints_the_local_timing_next_to_the_clouds():
    class Stack:
        settings = LocalStackConfig().settings

    line = _delivery_policy(Stack())  # type: ignore[arg-type]
    assert "ack deadline 10 s (the cloud's 60 s" in line
    assert "none, redelivery at once (the cloud backs off 10-600 s" in line
    assert "dead letter after 20 delivery attempts (the cloud's 5)" in line
