"""The end-to-end canary: publish one event to the topic, read it back through the API.

Its events are synthetic (app/contract/synthetic.py): marked when published, left out of the
API's default reads and the analysts' view, and read back with `synthetic=include`. Each test
also proves the default read leaves its event out, so the canary never shows up in analysts' data.

Runs against the local stack by default. Point it at a deployed environment with
`E2E_BASE_URL` (the service URL), `E2E_PROJECT` (its Google Cloud project), optionally
`E2E_TOPIC` (default: the pipeline's topic) and `E2E_ID_TOKEN` (an ID token whose audience is
the service URL, of a principal on the stack's publisher list); publishing to the topic then uses
Application Default Credentials.

The token goes in both headers, as docs/api.md says every caller sends it: Cloud Run's invoker
check reads `X-Serverless-Authorization` and leaves `Authorization`, signature intact, to the app.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from google.cloud.pubsub_v1 import PublisherClient

from app.contract.flight_event import FlightEvent, decode_event, encode_event
from app.contract.pipeline import PIPELINE
from app.contract.synthetic import HEADER, INCLUDE, MARK, attributes
from tests.factories import flight_event

VISIBLE_WITHIN_SECONDS = float(os.environ.get("E2E_TIMEOUT_SECONDS", "60"))


@dataclass
class Target:
    base_url: str
    publisher: PublisherClient
    topic_path: str
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if base_url := os.environ.get("E2E_BASE_URL"):
        publisher = PublisherClient()
        topic = PublisherClient.topic_path(
            os.environ["E2E_PROJECT"], os.environ.get("E2E_TOPIC", PIPELINE.topic)
        )
        token = os.environ.get("E2E_ID_TOKEN")
        bearer = {"Authorization": f"Bearer {token}", "X-Serverless-Authorization": f"Bearer {token}"}
        yield Target(base_url.rstrip("/"), publisher, topic, bearer if token else {})
    else:
        stack = request.getfixturevalue("local_stack")
        yield Target(stack.api_base_url, stack.publisher(), stack.topic_path)


INCLUDE_SYNTHETIC = {"synthetic": INCLUDE}


def poll_flight(target: Target, event: FlightEvent) -> httpx.Response:
    """GET the (synthetic) flight until it is there or the deadline passes; returns the last answer.

    404 (not stored yet) and 503 (a backend busy: the API says retry) are retried, as a client would.
    """
    url = f"{target.base_url}/v1/flights/{event.event_id}"
    deadline = time.monotonic() + VISIBLE_WITHIN_SECONDS
    with httpx.Client(headers=target.headers, timeout=10) as client:
        while True:
            response = client.get(url, params={"on": event.event_time.date().isoformat()} | INCLUDE_SYNTHETIC)
            if response.status_code not in (404, 503) or time.monotonic() > deadline:
                return response
            time.sleep(0.5)


def assert_left_out_by_default(target: Target, event: FlightEvent) -> None:
    """The stored synthetic event is absent from the default lookup and list, present when included.

    Lists are cached for up to 30 s (docs/api.md), so the included list is read until it shows the event.
    """
    day = event.event_time.date().isoformat()
    window = {"from": day, "to": day, "carrier": event.carrier, "limit": 500}
    deadline = time.monotonic() + VISIBLE_WITHIN_SECONDS
    with httpx.Client(headers=target.headers, timeout=10) as client:
        lookup = client.get(f"{target.base_url}/v1/flights/{event.event_id}", params={"on": day})
        listed = client.get(f"{target.base_url}/v1/flights", params=window)
        while True:
            included = client.get(f"{target.base_url}/v1/flights", params=window | INCLUDE_SYNTHETIC)
            ids = (
                [item["event_id"] for item in included.json()["items"]] if included.status_code == 200 else []
            )
            if event.event_id in ids or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert lookup.status_code == 404, lookup.text
    assert listed.status_code == 200, listed.text
    assert event.event_id not in [item["event_id"] for item in listed.json()["items"]]
    assert event.event_id in ids, included.text


def test_published_canary_is_served_with_every_field_intact(target: Target) -> None:
    now = datetime.now(UTC)
    canary = flight_event(f"canary-{uuid.uuid4().hex}", departure=now, carrier="ZZ", flight_number=9999)
    message_id = target.publisher.publish(
        target.topic_path, encode_event(canary), source="e2e-canary", **attributes(synthetic=True)
    ).result(timeout=30)
    assert message_id

    response = poll_flight(target, canary)

    assert response.status_code == 200, response.text
    served = decode_event(response.content)
    assert served == canary  # every field, timestamps to the microsecond, in UTC
    assert_left_out_by_default(target, canary)


def test_event_posted_to_the_api_reaches_the_warehouse(target: Target) -> None:
    event = flight_event(
        f"api-{uuid.uuid4().hex}", departure=datetime.now(UTC), carrier="ZZ", flight_number=9998
    )
    posted = httpx.post(
        f"{target.base_url}/v1/events",
        content=encode_event(event),
        headers=target.headers | {"content-type": "application/json", HEADER: MARK},
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["event_id"] == event.event_id
    assert posted.json()["message_id"]
    assert posted.json()["synthetic"] is True

    response = poll_flight(target, event)

    assert response.status_code == 200, response.text
    assert decode_event(response.content) == event
    assert_left_out_by_default(target, event)
