"""Reads through the HTTP API: cache hits, ETag/304, stale answers while BigQuery is down, the breaker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from google.api_core.exceptions import ServiceUnavailable
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.warehouse import Extent, FlightQuery, RowsPage
from tests.factories import flight_event


class FakeWarehouse:
    """Counts list and lookup queries; `down` makes every call fail as an unreachable BigQuery would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.down = False
        self.stored = ["cached-1"]
        self.extent: Extent | None = Extent(newest=date(2013, 3, 1), rows=1)

    def land(self, *event_ids: str) -> None:
        """Rows arrive in the table: the page and the partition metadata both change."""
        self.stored += event_ids
        self.extent = Extent(newest=date(2013, 3, 1), rows=len(self.stored))

    def _call(self, name: str, argument: Any) -> None:
        self.calls.append((name, argument))
        if self.down:
            raise ServiceUnavailable("BigQuery is away")

    def list_flights(self, query: FlightQuery) -> RowsPage:
        self._call("list", query)
        return RowsPage(events=[flight_event(i) for i in self.stored], last_key=None, more=False)

    def get_flight(self, event_id: str, on: date | None = None, include_synthetic: bool = False) -> Any:
        self._call("get", event_id)
        return flight_event(event_id) if event_id.startswith("known") or event_id in self.stored else None

    def newest_day(self, latest: date) -> Extent | None:
        self._call("newest", latest)
        return self.extent

    def close(self) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[TestClient, FakeWarehouse]]:
    settings = Settings(
        project_id="cache-test",
        cache_ttl_seconds=0.5,
        cache_not_found_ttl_seconds=0.5,
        cache_stale_seconds=60,
        breaker_failures=2,
        breaker_cooldown_seconds=0.5,
    )
    services = Services(settings)
    warehouse = FakeWarehouse()
    services.__dict__["warehouse"] = warehouse
    with TestClient(create_app(services=services)) as client:
        yield client, warehouse


LIST = "/v1/flights?from=2013-03-01&to=2013-03-02"


def test_repeated_reads_are_served_from_the_cache(api) -> None:
    client, warehouse = api
    first = client.get(LIST)
    assert first.status_code == 200
    assert "fwd=miss" in first.headers["cache-status"]
    for _ in range(5):
        again = client.get(LIST)
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["cache-status"].startswith("flight-api; hit")
        assert again.headers["etag"] == first.headers["etag"]
    # The same query written differently is the same entry: keyed by the normalised query.
    assert (
        client.get("/v1/flights?to=2013-03-02&limit=50&from=2013-03-01")
        .headers["cache-status"]
        .startswith("flight-api; hit")
    )
    assert [name for name, _ in warehouse.calls] == ["list"]
    assert first.headers["cache-control"].startswith("private, max-age=")


def test_a_current_etag_gets_304_without_a_body(api) -> None:
    client, _ = api
    etag = client.get(LIST).headers["etag"]
    not_modified = client.get(LIST, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert client.get(LIST, headers={"If-None-Match": '"something-else"'}).status_code == 200
    assert client.get(LIST, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304


def test_lookups_cache_found_and_not_found_answers(api) -> None:
    client, warehouse = api
    for _ in range(3):
        assert client.get("/v1/flights/known-1").status_code == 200
        missing = client.get("/v1/flights/unknown-1")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    assert [name for name, _ in warehouse.calls] == ["get", "get"]


def test_while_bigquery_is_down_recent_answers_are_served_stale_and_others_get_503(api) -> None:
    client, warehouse = api
    fresh = client.get(LIST)
    time.sleep(0.6)  # past the TTL
    warehouse.down = True
    stale = client.get(LIST)
    assert stale.status_code == 200
    assert stale.content == fresh.content
    assert "fwd=stale" in stale.headers["cache-status"]
    assert "fwd-status=503" in stale.headers["cache-status"]
    assert stale.headers["cache-control"] == "private, max-age=0"
    never_read = client.get("/v1/flights?from=2013-03-05&to=2013-03-06")
    assert never_read.status_code == 503
    assert never_read.headers["content-type"].startswith("application/problem+json")
    # Two transient failures opened the breaker: BigQuery is not called again during the cool-down.
    calls = len(warehouse.calls)
    started = time.monotonic()
    fast = client.get("/v1/flights?from=2013-03-07&to=2013-03-08")
    assert fast.status_code == 503
    assert int(fast.headers["retry-after"]) >= 1
    assert len(warehouse.calls) == calls
    assert client.get(LIST).headers["cache-status"].startswith("flight-api; fwd=stale")
    assert time.monotonic() - started < 0.5  # answered without waiting for BigQuery
    # Back up: after the cool-down one trial call closes the breaker and answers are fresh again.
    warehouse.down = False
    time.sleep(0.6)
    recovered = client.get("/v1/flights?from=2013-03-07&to=2013-03-08")
    assert recovered.status_code == 200
    assert "fwd=miss" in recovered.headers["cache-status"]


def test_the_default_window_survives_an_outage_too(api) -> None:
    client, warehouse = api
    assert client.get("/v1/flights").status_code == 200
    time.sleep(0.6)
    warehouse.down = True
    stale = client.get("/v1/flights")
    assert stale.status_code == 200
    assert "fwd=stale" in stale.headers["cache-status"]


def test_fresh_hits_answered_before_the_framework_are_the_same_answer() -> None:
    """The fast path (cached_reads.CachedReadsFastPath) serves exactly what the API's handler served."""
    services = Services(Settings(project_id="cache-test"))
    warehouse = FakeWarehouse()
    services.__dict__["warehouse"] = warehouse
    answered_in_front: list[bool] = []
    fresh_for = services.cache.fresh_for

    def spy(target: bytes) -> Any:
        found = fresh_for(target)
        answered_in_front.append(found is not None)
        return found

    services.cache.fresh_for = spy  # type: ignore[method-assign]
    with TestClient(create_app(services=services)) as client:
        first = client.get(LIST)  # through Litestar: validated, queried, remembered
        second = client.get(LIST)  # a fresh hit: answered in front of Litestar
        assert second.status_code == first.status_code == 200
        assert second.content == first.content
        volatile = {"date", "x-request-id", "cache-status", "cache-control", "age"}
        assert {k: v for k, v in second.headers.items() if k not in volatile} == {
            k: v for k, v in first.headers.items() if k not in volatile
        }
        assert second.headers["cache-status"].startswith("flight-api; hit")
        assert client.get(LIST, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert len(warehouse.calls) == 1
        assert answered_in_front[:3] == [False, True, True]
        # A target never validated is never answered from the front, even if it reads the same.
        unknown = client.get(LIST + "&nope=1")
        assert unknown.status_code == 400


def test_the_rate_limit_holds_for_answers_from_the_front() -> None:
    services = Services(Settings(project_id="cache-test", rate_limit_per_minute=3))
    services.__dict__["warehouse"] = FakeWarehouse()
    with TestClient(create_app(services=services)) as client:
        statuses = [client.get(LIST).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def items(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["event_id"] for item in response.json()["items"]]


def test_a_default_window_read_before_the_data_arrived_never_outlives_its_arrival(api) -> None:
    """Issue 20: an empty default page read while the stack was starting was served for 30 s after the
    replayed data landed. No data is never cached, and a default window is keyed on the rows stored."""
    client, warehouse = api
    warehouse.stored, warehouse.extent = [], None  # the stack has just started: nothing stored
    assert items(client.get("/v1/flights?limit=3")) == []
    assert items(client.get("/v1/flights?limit=3")) == []
    assert [name for name, _ in warehouse.calls].count("newest") == 2  # "no data" was not cached
    warehouse.land("first", "second")
    assert items(client.get("/v1/flights?limit=3")) == ["first", "second"]  # at once, no TTL to wait out
    again = client.get("/v1/flights?limit=3")
    assert again.headers["cache-status"].startswith("flight-api; hit")


def test_no_cache_reads_fresh_and_refreshes_what_others_read(api) -> None:
    client, warehouse = api
    assert items(client.get("/v1/flights?limit=3")) == ["cached-1"]
    assert client.get("/v1/flights/late-1").status_code == 404
    warehouse.land("late-1")
    # Within the TTL the cached answers stand (the documented read-after-write wait) ...
    assert items(client.get("/v1/flights?limit=3")) == ["cached-1"]
    assert client.get("/v1/flights/late-1").status_code == 404
    # ... unless the caller asks for a fresh answer, which is then what everyone reads.
    fresh = client.get("/v1/flights?limit=3", headers={"Cache-Control": "no-cache"})
    assert items(fresh) == ["cached-1", "late-1"]
    assert "fwd=request" in fresh.headers["cache-status"]
    assert items(client.get("/v1/flights?limit=3")) == ["cached-1", "late-1"]
    assert client.get("/v1/flights/late-1", headers={"Cache-Control": "no-cache"}).status_code == 200
    assert client.get("/v1/flights/late-1").status_code == 200


def test_the_document_states_the_default_limit_the_ttls_and_how_to_read_fresh() -> None:
    settings = Settings(project_id="docs", cache_ttl_seconds=12, cache_not_found_ttl_seconds=3)
    with TestClient(create_app(settings)) as client:
        spec = client.get("/schema/openapi.json").json()
    listing = spec["paths"]["/v1/flights"]["get"]
    parameters = {p["name"]: p for p in listing["parameters"]}
    assert parameters["limit"]["schema"]["default"] == 50
    assert "default 50" in parameters["limit"]["description"]
    assert "no-cache" in parameters["Cache-Control"]["description"]
    lookup = {p["name"] for p in spec["paths"]["/v1/flights/{event_id}"]["get"]["parameters"]}
    assert "Cache-Control" in lookup
    # The instance's own TTLs, not restated defaults.
    assert "an answer for 12 s, a 404 for 3 s" in spec["info"]["description"]
    assert "At most 31 days" in listing["description"]


@pytest.mark.parametrize("per_minute", [1200, 0])
def test_the_rate_limit_example_is_this_instances_limit(per_minute: int) -> None:
    with TestClient(create_app(Settings(project_id="docs", rate_limit_per_minute=per_minute))) as client:
        paths = client.get("/schema/openapi.json").json()["paths"]
    operations = [
        paths["/v1/flights"]["get"],
        paths["/v1/flights/{event_id}"]["get"],
        paths["/v1/events"]["post"],
    ]
    for operation in operations:
        documented = operation["responses"].get("429")
        if per_minute == 0:  # no limit, so never a 429
            assert documented is None
        else:
            (example,) = documented["content"]["application/problem+json"]["examples"].values()
            assert example["value"]["detail"].startswith(f"More than {per_minute} requests a minute")
