"""Bad requests get a 4xx problem document, an unreachable backend a 503; never a bare 500.

These run without any backend: validation happens before the service touches one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import msgspec
import pytest
from litestar.testing import TestClient

from app.api.flights import decode_cursor, encode_cursor, resolve_window
from app.api.main import create_app
from app.api.settings import Settings
from app.contract.flight_event import decode_event
from tests.unit.test_contract import VALID


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # A BigQuery endpoint nobody listens on: any query the app makes fails fast.
    settings = Settings(
        project_id="errors-test", bigquery_api_endpoint="http://127.0.0.1:9", query_timeout_seconds=2
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        msgspec.json.encode(VALID | {"unknown_field": 1}),
        msgspec.json.encode(VALID | {"flight_number": "one"}),
        msgspec.json.encode({k: v for k, v in VALID.items() if k != "carrier"}),
        msgspec.json.encode(VALID | {"event_time": "2013-01-01T10:15:00"}),
        msgspec.json.encode(VALID | {"scheduled_arrival": VALID["scheduled_departure"]}),
    ],
    ids=[
        "malformed",
        "not-an-object",
        "unknown-field",
        "wrong-type",
        "missing-required",
        "naive-time",
        "rule",
    ],
)
def test_bad_events_are_rejected_with_a_problem(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=abc",
        "from=0.5",
        "from=2013-13-01",
        "carrier=united",
        "origin=jfk",
        "cursor=not-a-cursor",
        "cursor=" + "0" * 40,
        "from=2013-01-10&to=2013-01-01",
        "from=2013-01-01&to=2013-03-01",
        "to=0001-01-03",
        "from=9999-12-31",
    ],
)
def test_bad_list_queries_are_rejected_with_a_problem(client: TestClient, query: str) -> None:
    assert_problem(client.get(f"/v1/flights?{query}"), 400)


def test_bad_event_id_is_rejected(client: TestClient) -> None:
    assert_problem(client.get("/v1/flights/" + "x" * 65), 400)
    assert_problem(client.get("/v1/flights/-leading-dash"), 400)


def test_unreachable_warehouse_is_a_503(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/flights?from=2013-01-01&to=2013-01-02"), 503)
    assert "unavailable" in body["detail"]
    assert_problem(client.get("/readyz"), 503)


def test_liveness_needs_no_backend(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404)
    assert_problem(client.delete("/v1/events"), 405)


def test_cursor_round_trips() -> None:
    event = decode_event(msgspec.json.encode(VALID))
    assert decode_cursor(encode_cursor(event)) == (event.event_time, event.event_id)


class _Services:
    def __init__(self, newest: date | None) -> None:
        self.settings = Settings(project_id="p")
        self._newest = newest

    def newest_day(self) -> date | None:
        return self._newest


def test_default_window_is_the_week_ending_on_the_newest_day() -> None:
    assert resolve_window(_Services(date(2013, 1, 9)), None, None) == (date(2013, 1, 3), date(2013, 1, 9))
    assert resolve_window(_Services(None), date(2013, 1, 1), None) == (date(2013, 1, 1), date(2013, 1, 7))
    assert resolve_window(_Services(None), None, date(2013, 1, 7)) == (date(2013, 1, 1), date(2013, 1, 7))
    today = datetime.now(UTC).date()
    assert resolve_window(_Services(None), None, None)[1] == today
