"""Chaos: nothing lost, nothing doubled, while the bridge is SIGKILLed and the warehouse is frozen.

N valid events, D duplicates of some of them and M messages that do not fit go straight to the
topic, in random order, over several seconds. Meanwhile the bridge process is killed with
SIGKILL twice (the stack's supervisor restarts it) and bqemulator is paused with SIGSTOP for
longer than any retry backoff (the bridge's, 10 s at most, and the subscription's), the second
kill landing while the warehouse is frozen. At the end the API serves exactly the N distinct
events, the M misfits (and nothing else of this run) are on the dead-letter topic, and none is
lost. The counts are printed, also when it passes.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.contract.flight_event import encode_event
from tests.factories import flight_event

pytestmark = pytest.mark.integration

N_VALID, N_DUPLICATES = 2_000, 300
PUBLISH_SECONDS = 12.0
PAUSE_SECONDS = 15.0  # longer than the bridge's 10 s backoff cap and the subscription's retry backoff
# After the warehouse resumes. A killed bridge's messages come back when their 10 s lease lapses
# (the second kill lands 10 s before the resume), so everything settled 2-4 s after the resume
# (5 runs in a row, 37-39 s in all); the deadline leaves room for a loaded machine. See docs/ingest.md.
DEADLINE_SECONDS = 60.0
FIRST = datetime(2016, 2, 1, 0, 5, tzinfo=UTC)  # days no other test writes to


def poison(run: str) -> dict[str, bytes]:
    """The six kinds of message that do not fit the table."""
    valid = json.loads(encode_event(flight_event(f"{run}-poison", departure=FIRST)))
    return {
        "non-json": b"{not json",
        "unknown-field": json.dumps(valid | {"gate": "A1"}).encode(),
        "wrong-type": json.dumps(valid | {"flight_number": "1545"}).encode(),
        "missing-required": json.dumps({k: v for k, v in valid.items() if k != "carrier"}).encode(),
        "invalid-utf8": json.dumps(valid).encode().replace(b'"UA"', b'"U\xff"'),
        "2mb-field": json.dumps(valid | {"tail_number": "N" * 2_000_000}).encode(),
    }


def visible_event_ids(client: httpx.Client, run: str, poll: int) -> set[str]:
    """Every event id of this run the API serves, following next_cursor through the window.

    The API caches each query's answer for 30 s; every poll asks a page size not asked before,
    so it sees the warehouse as it is now.
    """
    ids: list[str] = []
    cursor = None
    while True:
        params = {"from": "2016-02-01", "to": "2016-02-03", "limit": 500 - poll}
        response = client.get("/v1/flights", params=params | ({"cursor": cursor} if cursor else {}))
        if response.status_code == 503:  # the API's answer while the warehouse is slow: retry as told
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        page = response.json()
        ids += [item["event_id"] for item in page["items"] if item["event_id"].startswith(run)]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(ids) == len(set(ids)), "the API served an event twice"
            return set(ids)


@pytest.mark.timeout(150)
def test_nothing_lost_nothing_doubled_through_kills_and_a_frozen_warehouse(local_stack, record_property):
    run = f"chaos{uuid.uuid4().hex[:8]}"
    events = [
        flight_event(f"{run}-{n}", departure=FIRST + timedelta(minutes=n), flight_number=1 + n % 9999)
        for n in range(N_VALID)
    ]
    bad = poison(run)
    messages = [(encode_event(e), "valid") for e in events]
    messages += [(encode_event(e), "duplicate") for e in random.sample(events, N_DUPLICATES)]
    messages += [(data, kind) for kind, data in bad.items() for _ in range(2)]
    random.shuffle(messages)
    n_poison = len(messages) - N_VALID - N_DUPLICATES

    # Our own pull subscription on the dead-letter topic: it sees only what is dead-lettered from now on.
    subscriber = local_stack.subscriber()
    dead_subscription = f"projects/{local_stack.project}/subscriptions/{run}-dead"
    subscriber.create_subscription(
        request={"name": dead_subscription, "topic": local_stack.dead_letter_topic_path}, timeout=10
    )
    publisher = local_stack.publisher()
    published: list[str] = []

    def publish() -> None:
        chunk = 100
        for start in range(0, len(messages), chunk):
            futures = [
                publisher.publish(local_stack.topic_path, data, run=run, kind=kind)
                for data, kind in messages[start : start + chunk]
            ]
            published.extend(f.result(timeout=30) for f in futures)
            time.sleep(PUBLISH_SECONDS * chunk / len(messages))

    bridge_pids = [local_stack.children["bridge"].pid]
    warehouse_pid = local_stack.children["bqemulator"].pid
    started = time.monotonic()
    publishing = threading.Thread(target=publish)
    publishing.start()
    try:
        time.sleep(3)
        os.kill(bridge_pids[-1], signal.SIGKILL)  # kill 1: mid-stream, batches in flight
        deadline = time.monotonic() + 30
        while local_stack.children["bridge"].pid == bridge_pids[-1] and time.monotonic() < deadline:
            time.sleep(0.1)
        bridge_pids.append(local_stack.children["bridge"].pid)
        time.sleep(3)
        os.kill(warehouse_pid, signal.SIGSTOP)  # the warehouse freezes: requests hang, then time out
        paused_at = time.monotonic()
        time.sleep(5)
        os.kill(bridge_pids[-1], signal.SIGKILL)  # kill 2: while holding messages through the outage
        time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - paused_at)))
    finally:
        os.kill(warehouse_pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    publishing.join(timeout=60)
    assert len(published) == len(messages), "every message was published"
    deadline = time.monotonic() + 30
    while local_stack.children["bridge"].pid == bridge_pids[-1] and time.monotonic() < deadline:
        time.sleep(0.1)
    bridge_pids.append(local_stack.children["bridge"].pid)

    dead: list[dict[str, str]] = []

    def collect_dead_letters() -> None:
        response = subscriber.pull(subscription=dead_subscription, max_messages=100, timeout=10)
        if response.received_messages:
            ack_ids = [m.ack_id for m in response.received_messages]
            subscriber.acknowledge(subscription=dead_subscription, ack_ids=ack_ids, timeout=10)
        attributes = [dict(m.message.attributes) for m in response.received_messages]
        dead.extend(a for a in attributes if a.get("run") == run)

    visible: set[str] = set()
    settled_after = float("nan")
    polls = itertools.count()
    with httpx.Client(base_url=local_stack.api_base_url, timeout=30) as client:
        while time.monotonic() - resumed_at < DEADLINE_SECONDS:
            collect_dead_letters()
            visible = visible_event_ids(client, run, next(polls))
            if len(visible) == N_VALID and len(dead) >= n_poison:
                settled_after = time.monotonic() - resumed_at
                break
            time.sleep(1)
        time.sleep(3)  # anything dead-lettered late (a valid event, or a poison twice) would show now
        collect_dead_letters()
        visible = visible_event_ids(client, run, next(polls))
    highest_attempt = local_stack.bridge_status().get("highest_attempt_stored", 0)
    subscriber.delete_subscription(subscription=dead_subscription, timeout=10)
    subscriber.close()

    expected = {e.event_id for e in events}
    lost = expected - visible
    dead_kinds = sorted(a["kind"] for a in dead)
    # The counts show in `make test`'s summaries, pass or fail (tests/conftest.py prints them).
    record_property(
        "summary",
        f"chaos {run}: published {N_VALID} valid + {N_DUPLICATES} duplicates + {n_poison} invalid; "
        f"bridge pids {' -> '.join(map(str, bridge_pids))} (SIGKILL x2), "
        f"warehouse paused {PAUSE_SECONDS:.0f} s, all settled {settled_after:.0f} s after it resumed; "
        f"visible through the API {len(visible)}, dead-lettered {len(dead)}, lost {len(lost)}; "
        f"highest delivery attempt of a stored message {highest_attempt} "
        f"(dead letter after {local_stack.settings.max_delivery_attempts}); "
        f"{time.monotonic() - started:.0f} s in all",
    )
    assert not lost, f"{len(lost)} valid events neither served nor dead-lettered, e.g. {sorted(lost)[:3]}"
    assert visible == expected, "the API serves exactly the valid events, each once"
    assert dead_kinds == sorted(kind for kind in bad for _ in range(2)), "exactly the misfits dead-lettered"
