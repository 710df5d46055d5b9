"""The operator's dead-letter command against the emulator: list with reasons, re-drive, discard."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from app.contract.flight_event import encode_event
from app.deadletters.__main__ import main
from tests.factories import flight_event

pytestmark = pytest.mark.integration


def cli(local_stack, subscription: str, *args: str) -> int:
    return main(
        [
            "--stack-file",
            str(local_stack.stack_file),
            "--subscription",
            subscription,
            *args,
        ]
    )


def listed(local_stack, subscription: str, capsys, run: str) -> dict[str, dict]:
    assert cli(local_stack, subscription, "list", "--json") == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ours = [letter for letter in letters if letter["attributes"].get("run") == run]
    return {letter["attributes"]["case"]: letter for letter in ours}


def inspection_subscription(local_stack) -> tuple[str, str]:
    """A run id and an inspection subscription of its own on the dead-letter topic."""
    run = f"dl{uuid.uuid4().hex[:8]}"
    subscription = f"{run}-inspect"
    subscriber = local_stack.subscriber()
    subscriber.create_subscription(
        request={
            "name": f"projects/{local_stack.project}/subscriptions/{subscription}",
            "topic": local_stack.dead_letter_topic_path,
        },
        timeout=10,
    )
    subscriber.close()
    return run, subscription


def test_list_explains_redrive_delivers_and_discard_removes(local_stack, capsys):
    run, subscription = inspection_subscription(local_stack)
    event = flight_event(f"{run}-fits", departure=datetime(2016, 3, 1, 12, tzinfo=UTC))
    valid = json.loads(encode_event(event))
    letters = {
        # Dead-lettered for reasons other than its content (say, crashes): it fits, re-drive it.
        "fits": encode_event(event),
        "unknown-field": json.dumps(valid | {"gate": "A1"}).encode(),
        "too-long": json.dumps(valid | {"tail_number": "N" * 2_000_000}).encode(),
    }
    publisher = local_stack.publisher()
    for case, data in letters.items():
        attributes = {"run": run, "case": case, "CloudPubSubDeadLetterSourceDeliveryCount": "5"}
        publisher.publish(local_stack.dead_letter_topic_path, data, **attributes).result(timeout=10)

    found = listed(local_stack, subscription, capsys, run)
    assert set(found) == set(letters)
    assert found["fits"]["fits"] is True
    assert found["unknown-field"]["reason"] == "fields without a column: gate"
    assert "over the column's maxLength 8" in found["too-long"]["reason"]
    assert found["too-long"]["delivery_attempts"] == 5
    assert listed(local_stack, subscription, capsys, run).keys() == found.keys(), "listing removes nothing"

    # Without --force, what still does not fit is not re-driven.
    unfit = found["unknown-field"]["message_id"]
    assert cli(local_stack, subscription, "redrive", "--message-id", unfit) == 1
    assert cli(local_stack, subscription, "redrive", "--all-fitting") == 0
    assert "re-drove 1 message(s)" in capsys.readouterr().out
    with httpx.Client(base_url=local_stack.api_base_url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = client.get(f"/v1/flights/{event.event_id}")
            if response.status_code == 200:
                break
            time.sleep(0.5)
        assert response.status_code == 200, "the re-driven event reached the table and the API"
    assert set(listed(local_stack, subscription, capsys, run)) == {"unknown-field", "too-long"}

    assert cli(local_stack, subscription, "discard", "--message-id", found["too-long"]["message_id"]) == 0
    assert "discarded 1 message(s)" in capsys.readouterr().out
    assert set(listed(local_stack, subscription, capsys, run)) == {"unknown-field"}
    assert cli(local_stack, subscription, "list") == 0
    table = capsys.readouterr().out
    assert "fields without a column: gate" in table
    assert "fit the table now" in table


def test_large_dead_letters_are_listed_together(local_stack, capsys):
    """Pub/Sub takes messages up to 10 MB; one pull of several must not hit gRPC's 4 MB default."""
    run, subscription = inspection_subscription(local_stack)
    valid = json.loads(encode_event(flight_event(f"{run}-big", departure=datetime(2016, 3, 2, tzinfo=UTC))))
    publisher = local_stack.publisher()
    for n in range(3):
        data = json.dumps(valid | {"tail_number": "N" * 2_000_000}).encode()
        future = publisher.publish(local_stack.dead_letter_topic_path, data, run=run, case=f"big-{n}")
        future.result(timeout=10)

    found = listed(local_stack, subscription, capsys, run)
    assert set(found) == {"big-0", "big-1", "big-2"}
    assert all("over the column's maxLength" in letter["reason"] for letter in found.values())
