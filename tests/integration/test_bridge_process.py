"""`python -m app.bridge` as a process: it drains on SIGTERM, holds messages through table problems
and reports them as the cloud's subscription states, and outlives failing pulls.

Each test gets its own topic, subscriptions and table on the session's emulators and runs its
own bridge process, so it can break them without touching the shared pipeline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud import bigquery

from app.bridge.config import BridgeConfig
from app.bridge.leases import LEASE_SECONDS
from app.contract.flight_event import encode_event
from app.contract.pipeline import PIPELINE
from app.local.provision import provision_bigquery, provision_pubsub
from tests.factories import flight_event

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Pipeline:
    """One isolated topic → subscription → table, and a way to run bridges on it."""

    stack: object
    settings: object
    tmp: Path

    @property
    def table_id(self) -> str:
        return f"{self.stack.project}.{self.settings.dataset}.{self.settings.table}"

    @property
    def status_file(self) -> Path:
        return self.tmp / "bridge-status.json"

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def start_bridge(self) -> subprocess.Popen[bytes]:
        config = BridgeConfig(
            subscription=f"projects/{self.stack.project}/subscriptions/{self.settings.subscription}",
            table=self.table_id,
            pubsub_emulator_host=self.stack.pubsub_host,
            bigquery_api_endpoint=self.stack.bigquery_endpoint,
            status_file=self.status_file,
            drain_seconds=5,
        )
        self.status_file.unlink(missing_ok=True)
        log = (self.tmp / "bridge.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "app.bridge"],
            cwd=REPO_ROOT,
            env=os.environ | config.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def publish(self, count: int, prefix: str) -> list[str]:
        publisher = self.stack.publisher()
        topic = f"projects/{self.stack.project}/topics/{self.settings.topic}"
        first = datetime(2014, 7, 1, tzinfo=UTC)
        events = [flight_event(f"{prefix}-{n}", departure=first + timedelta(minutes=n)) for n in range(count)]
        for future in [publisher.publish(topic, encode_event(e)) for e in events]:
            future.result(timeout=30)
        return [e.event_id for e in events]

    def stored_ids(self) -> set[str]:
        sql = f"SELECT DISTINCT event_id FROM `{self.table_id}`"  # noqa: S608
        client = self.stack.bigquery()
        retry = bigquery.DEFAULT_RETRY.with_timeout(10)
        return {row["event_id"] for row in client.query(sql, timeout=10, retry=retry).result(timeout=10)}

    def dead_letters(self) -> int:
        subscriber = self.stack.subscriber()
        path = f"projects/{self.stack.project}/subscriptions/{self.settings.dead_letter_subscription}"
        response = subscriber.pull(subscription=path, max_messages=100, timeout=5)
        subscriber.close()
        return len(response.received_messages)

    def log(self) -> str:
        return (self.tmp / "bridge.log").read_text(errors="replace")


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


@pytest.fixture
def pipeline(local_stack, tmp_path) -> Pipeline:
    name = f"b{uuid.uuid4().hex[:8]}"
    settings = replace(
        local_stack.settings,
        topic=name,
        dead_letter_topic=f"{name}-dead",
        subscription=f"{name}-to-warehouse",
        dead_letter_subscription=f"{name}-dead-inspect",
        table=f"{name}_events",
        latest_view=f"{name}_latest",
    )
    publisher, subscriber = local_stack.publisher(), local_stack.subscriber()
    provision_pubsub(publisher, subscriber, local_stack.project, settings)
    subscriber.close()
    return Pipeline(local_stack, settings, tmp_path)


def stop(bridge: subprocess.Popen[bytes]) -> None:
    if bridge.poll() is None:
        bridge.kill()
        bridge.wait(timeout=10)


def test_sigterm_drains_and_a_new_bridge_finishes_the_job(pipeline):
    provision_bigquery(pipeline.stack.bigquery(), pipeline.stack.project, pipeline.settings)
    ids = pipeline.publish(3_000, "drain")
    first = pipeline.start_bridge()
    try:
        assert wait_for(lambda: pipeline.status().get("stored", 0) > 0, 60), pipeline.log()
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0, pipeline.log()
    finally:
        stop(first)
    final = pipeline.status()
    assert final["running"] is False
    assert 30 < final["peak_rss_mib"] < 1024, "the bridge reports its peak memory, in MiB"
    assert "bridge stopped" in pipeline.log()
    second = pipeline.start_bridge()
    try:
        assert wait_for(lambda: pipeline.stored_ids() >= set(ids), 90), pipeline.log()
    finally:
        stop(second)
    assert pipeline.stored_ids() == set(ids)
    assert pipeline.dead_letters() == 0


def test_a_missing_table_is_reported_held_and_written_once_it_exists(pipeline):
    """Like a BigQuery subscription in state NOT_FOUND: nothing is dead-lettered one by one."""
    ids = pipeline.publish(50, "missing")
    bridge = pipeline.start_bridge()
    try:
        assert wait_for(lambda: pipeline.status().get("state") == "NOT_FOUND", 60), pipeline.log()
        assert pipeline.status()["held"] == 50
        time.sleep(5)  # longer than the emulator needs to dead-letter a nacked message 5 times
        assert pipeline.dead_letters() == 0
        provision_bigquery(pipeline.stack.bigquery(), pipeline.stack.project, pipeline.settings)
        assert wait_for(lambda: pipeline.stored_ids() == set(ids), 60), pipeline.log()
        assert wait_for(lambda: pipeline.status().get("state") == "ACTIVE", 10)
    finally:
        stop(bridge)
    assert pipeline.dead_letters() == 0


def test_a_failing_pull_is_retried_with_backoff(pipeline):
    """The subscription disappears under the bridge: its pulls fail; it retries them and goes on."""
    provision_bigquery(pipeline.stack.bigquery(), pipeline.stack.project, pipeline.settings)
    subscriber = pipeline.stack.subscriber()
    path = f"projects/{pipeline.stack.project}/subscriptions/{pipeline.settings.subscription}"
    bridge = pipeline.start_bridge()
    try:
        assert wait_for(lambda: pipeline.status().get("running") is True, 30), pipeline.log()
        subscriber.delete_subscription(subscription=path, timeout=10)
        assert wait_for(lambda: pipeline.status().get("failed_pulls", 0) > 0, 30), pipeline.log()
        assert "pull failed" in pipeline.log()
        publisher = pipeline.stack.publisher()
        provision_pubsub(publisher, subscriber, pipeline.stack.project, pipeline.settings)
        ids = pipeline.publish(100, "reopened")
        assert wait_for(lambda: pipeline.stored_ids() == set(ids), 90), pipeline.log()
        assert bridge.poll() is None, "the bridge never stops on its own"
    finally:
        stop(bridge)
        subscriber.close()


def test_the_warehouse_subscription_leases_no_longer_than_the_bridge(local_stack):
    """What the emulator hands to a Pull a killed bridge left waiting comes back within a lease."""
    subscriber = local_stack.subscriber()
    try:
        warehouse = subscriber.get_subscription(subscription=local_stack.subscription_path, timeout=10)
        inspection = subscriber.get_subscription(
            subscription=local_stack.dead_letter_subscription_path, timeout=10
        )
    finally:
        subscriber.close()
    assert warehouse.ack_deadline_seconds == LEASE_SECONDS
    assert inspection.ack_deadline_seconds == PIPELINE.dead_letter_ack_deadline_seconds, "listing needs time"


def test_a_frozen_pubsub_emulator_loses_nothing_and_the_bridge_goes_on(pipeline):
    """Pub/Sub hangs (SIGSTOP) for longer than a pull's deadline and a lease while the bridge holds
    messages (the table does not exist yet): pulls and lease extensions time out, the bridge
    retries, and once Pub/Sub answers again every event is stored and none is dead-lettered."""
    ids = pipeline.publish(2_000, "frozen-pubsub")
    pubsub_pid = pipeline.stack.children["pubsub-emulator"].pid
    bridge = pipeline.start_bridge()
    try:
        assert wait_for(lambda: pipeline.status().get("held") == 2_000, 30), pipeline.status()
        os.kill(pubsub_pid, signal.SIGSTOP)
        try:
            assert wait_for(lambda: pipeline.status().get("failed_pulls", 0) > 0, 30), pipeline.log()
            time.sleep(LEASE_SECONDS)  # what the bridge holds can no longer be extended
        finally:
            os.kill(pubsub_pid, signal.SIGCONT)
        provision_bigquery(pipeline.stack.bigquery(), pipeline.stack.project, pipeline.settings)
        ids += pipeline.publish(300, "after-the-freeze")
        assert wait_for(lambda: pipeline.stored_ids() == set(ids), 90), pipeline.status()
        assert bridge.poll() is None, "the bridge outlived the freeze"
    finally:
        stop(bridge)
    assert pipeline.dead_letters() == 0
