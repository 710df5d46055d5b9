"""Ingest against its ceilings: publish -> Pub/Sub -> bridge -> warehouse -> visible through the API.

Ceilings, measured in the same run on the same emulators, with the same events:

- Pub/Sub: the emulator's own publish + pull rate on a topic and subscription of their own, with
  the replay's publisher settings and as many threads calling Pull as the bridge has pullers,
  acking at once;
- warehouse: bqemulator's own `insertAll` rate into a table of its own with the table's schema, in
  the bridge's batch size from as many threads as the bridge has writers.

The pipeline figure is the replay through the real path: `N / (time the last event is visible
- time of the first publish)`. "Visible" is checked through the API: a sample of events (one in
`sample_every`) is looked up by id, oldest first, four times a second, each round stopping at the
first one not yet visible, so that the checks take little of the emulator from the bridge; the
warehouse's distinct count says when all N are stored.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from google.cloud import bigquery, pubsub_v1

from app.bridge import Bridge, RowMapper
from app.contract.flight_event import encode_event
from app.local import LocalStack
from app.local.provision import provision_bigquery, provision_pubsub
from app.local.replay import REPLAY_ATTRIBUTES, airport_zones, publisher, read_flights, replay, to_event
from bench.figures import Figure, percentile, ratio
from bench.processes import rss_mib

BQ_TIMEOUT = 60.0


@dataclass(frozen=True)
class IngestConfig:
    start: date = date(2013, 1, 1)
    days: int = 30
    sample_every: int = 200
    # At least this long, and 5 ms per event beyond it (the full year may take half an hour locally).
    timeout_seconds: float = 600.0


@dataclass
class IngestResults:
    events: int = 0
    figures: list[Figure] = field(default_factory=list)
    # (events stored so far, bridge RSS in MiB), sampled about once a second.
    bridge_rss: list[tuple[float, float]] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    complete: bool = False


def _bridge_defaults() -> dict[str, Any]:
    """The bridge's pullers, writers and batch size, so the ceilings use the bridge's own shape."""
    parameters = inspect.signature(Bridge.__init__).parameters
    return {name: parameters[name].default for name in ("pullers", "writers", "batch_rows")}


def events_to_replay(config: IngestConfig) -> list[bytes]:
    zones = airport_zones()
    events = []
    for row in read_flights(config.start, config.days):
        with contextlib.suppress(ValueError):
            events.append(encode_event(to_event(row, zones)))
    return events


def pubsub_ceiling(stack: LocalStack, events: list[bytes], pullers: int, timeout: float) -> float:
    """Messages/s the emulator moves from publish to ack through `pullers` threads calling Pull."""
    suffix = uuid.uuid4().hex[:8]
    settings = replace(
        stack.settings,
        topic=f"bench-ceiling-{suffix}",
        dead_letter_topic=f"bench-ceiling-dl-{suffix}",
        subscription=f"bench-ceiling-{suffix}",
        dead_letter_subscription=f"bench-ceiling-dl-{suffix}",
    )
    admin_publisher, admin_subscriber = stack.publisher(), stack.subscriber()
    provision_pubsub(admin_publisher, admin_subscriber, stack.project, settings)
    admin_subscriber.close()
    received = 0
    lock = threading.Lock()
    subscription = pubsub_v1.SubscriberClient.subscription_path(stack.project, settings.subscription)

    def pull_and_ack(deadline: float) -> None:
        nonlocal received
        subscriber = stack.subscriber()
        while received < len(events) and time.monotonic() < deadline:
            response = subscriber.pull(subscription=subscription, max_messages=1_000, timeout=5)
            ack_ids = [m.ack_id for m in response.received_messages]
            if ack_ids:
                subscriber.acknowledge(subscription=subscription, ack_ids=ack_ids)
            with lock:
                received += len(ack_ids)
        subscriber.close()

    client = publisher(stack.pubsub_host)
    topic = pubsub_v1.PublisherClient.topic_path(stack.project, settings.topic)
    began = time.monotonic()
    with ThreadPoolExecutor(pullers) as pool:
        pulls = [pool.submit(pull_and_ack, began + timeout) for _ in range(pullers)]
        futures = [client.publish(topic, data, **REPLAY_ATTRIBUTES) for data in events]
        for future in futures:
            future.result(timeout=timeout)
        for pull in pulls:
            pull.result()
    elapsed = time.monotonic() - began
    client.stop()
    return received / elapsed


def insert_ceiling(stack: LocalStack, events: list[bytes], writers: int, batch_size: int) -> float:
    """Rows/s bqemulator's insertAll takes into an empty table of the same schema."""
    settings = replace(stack.settings, dataset=f"bench_ceiling_{uuid.uuid4().hex[:8]}")
    client = stack.bigquery()
    provision_bigquery(client, stack.project, settings)
    table_id = f"{stack.project}.{settings.dataset}.{settings.table}"
    mapper = RowMapper(pubsub_v1.SubscriberClient.subscription_path(stack.project, "bench-ceiling"))
    now = datetime.now(UTC)
    rows = [
        mapper.to_row(data, message_id=str(n), publish_time=now, attributes=REPLAY_ATTRIBUTES)
        for n, data in enumerate(events)
    ]
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    retry = bigquery.DEFAULT_RETRY.with_timeout(BQ_TIMEOUT)

    def insert(batch: list[dict[str, Any]]) -> None:
        ids = [row["message_id"] for row in batch]
        errors = client.insert_rows_json(table_id, batch, row_ids=ids, timeout=BQ_TIMEOUT, retry=retry)
        if errors:
            raise RuntimeError(f"insert ceiling: rows refused: {errors[:2]}")

    began = time.monotonic()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(insert, batches))
    elapsed = time.monotonic() - began
    client.delete_dataset(f"{stack.project}.{settings.dataset}", delete_contents=True, not_found_ok=True)
    client.close()
    return len(rows) / elapsed


class _TimedPublisher:
    """Wraps the replay's publisher: notes when each sampled event was handed to Pub/Sub."""

    def __init__(self, client: pubsub_v1.PublisherClient, sample_every: int) -> None:
        self._client = client
        self._every = sample_every
        self.count = 0
        self.first_publish: float | None = None
        self.samples: dict[str, tuple[float, str]] = {}  # event id -> (publish time, UTC day)
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, **attributes: str) -> Any:
        now = time.monotonic()
        with self._lock:
            if self.first_publish is None:
                self.first_publish = now
            if self.count % self._every == 0:
                event = json.loads(data)
                self.samples[event["event_id"]] = (now, event["event_time"][:10])
            self.count += 1
        return self._client.publish(topic, data, **attributes)

    def stop(self) -> None:
        self._client.stop()


def _visible(api_url: str, event_id: str, day: str) -> bool:
    try:
        url = f"{api_url}/v1/flights/{event_id}?on={day}"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL built here
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stored(client: bigquery.Client, table_id: str) -> int:
    sql = f"SELECT COUNT(DISTINCT event_id) AS n FROM `{table_id}` WHERE event_time >= @s"  # noqa: S608
    params = [bigquery.ScalarQueryParameter("s", "TIMESTAMP", datetime(2000, 1, 1, tzinfo=UTC))]
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params), timeout=BQ_TIMEOUT)
    return int(next(iter(job.result(timeout=BQ_TIMEOUT)))["n"])


def run_pipeline(
    stack: LocalStack,
    api_url: str,
    config: IngestConfig,
    bridge_pid: int,
    expected: int,
    log: Callable[[str], None] = print,
) -> IngestResults:
    """Replay the window through the topic and wait until every event is visible; time it."""
    results = IngestResults()
    client = stack.bigquery()
    baseline = _stored(client, stack.table_id)
    timed = _TimedPublisher(publisher(stack.pubsub_host), config.sample_every)
    replayed: dict[str, Any] = {}

    def do_replay() -> None:
        try:
            replayed["result"] = replay(
                timed,  # duck-typed: replay only calls publish()
                stack.topic_path,
                read_flights(config.start, config.days),
                progress=False,
            )
        except Exception as exc:  # reported below, the harness goes on
            replayed["error"] = exc

    thread = threading.Thread(target=do_replay, name="bench-replay", daemon=True)
    thread.start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + max(config.timeout_seconds, expected / 200)
    all_stored_at: float | None = None
    next_print = 0.1
    last_count_at = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now - last_count_at >= 1.0:
            last_count_at = now
            stored = _stored(client, stack.table_id) - baseline
            results.bridge_rss.append((stored, rss_mib(bridge_pid)))
            published, replaying = timed.count, thread.is_alive()  # each valid event is published once
            if not replaying and stored >= published and all_stored_at is None:
                all_stored_at = time.monotonic()
            if stored / expected >= next_print:
                log(
                    f"  ingest: {stored:,}/{expected:,} stored,"
                    f" bridge RSS {results.bridge_rss[-1][1]:.0f} MiB"
                )
                next_print = math.floor(stored / expected * 10) / 10 + 0.1
        with timed._lock:
            pending = sorted((t, i, d) for i, (t, d) in timed.samples.items() if i not in seen)
        for _, event_id, day in pending[:8]:  # oldest first; the bridge stores roughly in order
            if not _visible(api_url, event_id, day):
                break
            seen[event_id] = time.monotonic()
        if all_stored_at is not None and len(seen) == len(timed.samples):
            break
        time.sleep(0.25)
    thread.join(timeout=60)
    timed.stop()
    if "error" in replayed:
        raise RuntimeError(f"replay failed: {replayed['error']!r}")
    result = replayed["result"]
    results.events = result.published
    results.complete = all_stored_at is not None and len(seen) == len(timed.samples)
    finished = max([all_stored_at or time.monotonic(), *seen.values()])
    assert timed.first_publish is not None  # noqa: S101 - set by the first publish
    results.latencies_s = [seen[i] - timed.samples[i][0] for i in seen]
    rate = results.events / (finished - timed.first_publish)
    results.figures.append(
        Figure(
            name="ingest, publish to visible",
            value=rate,
            unit="events/s",
            p50_ms=1000 * percentile(results.latencies_s, 50),
            p99_ms=1000 * percentile(results.latencies_s, 95),
            note=(
                f"{results.events:,} events ({config.days} days from {config.start}); latency columns are "
                f"p50/p95 of {len(results.latencies_s)} sampled events"
                + ("" if results.complete else "; NOT all visible before the timeout")
            ),
            extra={"replay_publish_rate": result.rate, "complete": results.complete},
        )
    )
    client.close()
    return results


def measure_ingest(
    stack: LocalStack, api_url: str, config: IngestConfig, bridge_pid: int, log: Callable[[str], None] = print
) -> IngestResults:
    shape = _bridge_defaults()
    events = events_to_replay(config)
    log(f"  ingest: Pub/Sub emulator ceiling ({len(events):,} messages, {shape['pullers']} pullers)")
    pubsub_rate = pubsub_ceiling(
        stack, events, shape["pullers"], max(config.timeout_seconds, len(events) / 200)
    )
    log(
        f"  ingest: warehouse emulator ceiling ({shape['writers']} writers, batches of {shape['batch_rows']})"
    )
    insert_rate = insert_ceiling(stack, events, shape["writers"], shape["batch_rows"])
    log(f"  ingest: replay through the pipeline ({len(events):,} events)")
    results = run_pipeline(stack, api_url, config, bridge_pid, len(events), log)
    figure = results.figures[0]
    figure.ceiling = min(pubsub_rate, insert_rate)
    figure.ceiling_name = "lower of Pub/Sub and warehouse emulators"
    figure.extra |= {
        "pubsub_ceiling": pubsub_rate,
        "insert_ceiling": insert_rate,
        "ratio_to_pubsub": ratio(figure.value, pubsub_rate),
        "ratio_to_insert": ratio(figure.value, insert_rate),
        **shape,
    }
    return results
