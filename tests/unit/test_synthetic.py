"""Synthetic traffic: who may mark an event, and that every read leaves marked rows out unless asked.

The rows themselves are checked on the emulators (tests/e2e/test_canary.py through the API,
tests/integration/test_bridge_pipeline.py for the analysts' view); here, the rules and the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from app.api.cursor import decode_cursor
from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.warehouse import FlightQuery, FlightWarehouse
from app.contract.examples import EXAMPLE_EVENT
from app.contract.pipeline import PIPELINE
from app.contract.synthetic import HEADER, REAL_ROWS_SQL
from tests.unit.test_publish_auth import JSON, PUBLISHER, CertServer, token
from tests.unit.test_query_shape import RecordingClient, row

CANARY = "deployer-dev@airline-delivery.iam.gserviceaccount.com"


class RecordingPublisher:
    """Stands in for PublisherClient and keeps each message's attributes."""

    def __init__(self) -> None:
        self.attributes: list[dict[str, str]] = []

    def publish(self, topic: str, data: bytes, **kwargs: Any) -> Future[str]:
        self.attributes.append({k: v for k, v in kwargs.items() if k not in ("retry", "timeout")})
        future: Future[str] = Future()
        future.set_result(str(len(self.attributes)))
        return future

    def stop(self) -> None:
        pass


class Warehouse(RecordingClient):
    """The recording BigQuery client, closable like the real one (the app closes it on shutdown)."""

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def certs() -> Iterator[CertServer]:
    server = CertServer()
    yield server
    server.server.shutdown()


def client_for(settings: Settings, rows: list[dict[str, Any]] | None = None) -> tuple[Any, Any, Any]:
    services = Services(settings)
    publisher, warehouse = RecordingPublisher(), Warehouse(rows)
    services.__dict__["publisher"] = publisher
    services.__dict__["warehouse"] = FlightWarehouse(warehouse, settings)  # type: ignore[arg-type]
    return TestClient(create_app(services=services)), publisher, warehouse


@pytest.fixture
def cloud(certs: CertServer) -> Iterator[tuple[TestClient, RecordingPublisher]]:
    settings = Settings(
        project_id="synthetic",
        publish_auth="google-id-token",
        publishers=(f"serviceAccount:{PUBLISHER}", f"serviceAccount:{CANARY}"),
        synthetic_publishers=(f"serviceAccount:{CANARY}",),
        token_certs_url=certs.url,
    )
    client, publisher, _ = client_for(settings)
    with client:
        yield client, publisher


def post(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/v1/events", content=json.dumps(EXAMPLE_EVENT), headers=JSON | headers)


def test_the_deploy_pipeline_marks_its_events_synthetic(cloud) -> None:
    client, publisher = cloud
    marked = post(client, {"Authorization": f"Bearer {token(email=CANARY)}", HEADER: "true"})
    unmarked = post(client, {"Authorization": f"Bearer {token(email=CANARY)}"})

    assert marked.status_code == unmarked.status_code == 202
    assert (marked.json()["synthetic"], unmarked.json()["synthetic"]) == (True, False)
    assert publisher.attributes == [{"source": "api", "synthetic": "true"}, {"source": "api"}]


def test_a_producer_cannot_hide_its_events_by_sending_the_header(cloud) -> None:
    client, publisher = cloud
    response = post(client, {"Authorization": f"Bearer {token()}", HEADER: "true"})

    assert response.status_code == 403, response.text
    assert "only the stack's synthetic publishers" in response.json()["detail"]
    assert publisher.attributes == []
    # Without the header the same producer publishes as always.
    assert post(client, {"Authorization": f"Bearer {token()}"}).status_code == 202


@pytest.mark.parametrize("value", ["false", "1", "TRUE", "yes", ""])
def test_any_other_mark_is_refused_not_guessed(value: str) -> None:
    client, publisher, _ = client_for(Settings(project_id="local", publish_auth="none"))
    with client:
        response = post(client, {HEADER: value})
    assert response.status_code == 400, response.text
    assert publisher.attributes == []


def test_default_reads_leave_synthetic_rows_out_and_include_reads_them() -> None:
    client, _, warehouse = client_for(Settings(project_id="local", publish_auth="none"), [row(), row()])
    window = {"from": "2013-01-01", "to": "2013-01-03", "limit": "1"}
    with client:
        answers = [
            client.get("/v1/flights", params=window),
            included := client.get("/v1/flights", params=window | {"synthetic": "include"}),
            client.get("/v1/flights", params={"cursor": included.json()["next_cursor"]}),
            client.get("/v1/flights/row"),
            client.get("/v1/flights/row", params={"synthetic": "include"}),
        ]
        refused = client.get("/v1/flights", params={"synthetic": "all"})

    assert [a.status_code for a in answers] == [200] * 5
    assert decode_cursor(included.json()["next_cursor"]).include_synthetic is True
    scans = [sql for sql, _ in warehouse.queries if "INFORMATION_SCHEMA" not in sql]
    # default list, included list, its next page (the cursor carries `include`), default and included lookup
    assert [REAL_ROWS_SQL in sql for sql in scans] == [True, False, False, True, False]
    assert refused.status_code == 400


def test_a_cursor_cannot_be_switched_to_another_synthetic_choice() -> None:
    client, _, _ = client_for(Settings(project_id="local", publish_auth="none"), [row(), row()])
    with client:
        page = client.get("/v1/flights", params={"from": "2013-01-01", "to": "2013-01-03", "limit": "1"})
        cursor = page.json()["next_cursor"]
        response = client.get("/v1/flights", params={"cursor": cursor, "synthetic": "include"})
    assert response.status_code == 400
    assert "synthetic" in response.json()["detail"]


def test_synthetic_rows_are_dropped_before_the_latest_copy_is_chosen() -> None:
    """A synthetic copy of a real event id must not hide the real copy (nor become it)."""
    client = RecordingClient()
    store = FlightWarehouse(client, Settings(project_id="shape"))  # type: ignore[arg-type]
    store.list_flights(
        FlightQuery(start=datetime(2013, 1, 1, tzinfo=UTC), end=datetime(2013, 1, 2, tzinfo=UTC), limit=5)
    )
    store.get_flight("x")
    for sql, _ in client.queries:
        assert sql.index(REAL_ROWS_SQL) < sql.index("copy_rank = 1" if "copy_rank" in sql else "ORDER BY")
    view = PIPELINE.latest_view_sql("p")
    assert view.index(REAL_ROWS_SQL) < view.index(") WHERE row_rank = 1")
