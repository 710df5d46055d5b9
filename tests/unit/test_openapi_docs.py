"""The docs work offline, every operation has examples, and links chain the operations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date

import pytest
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import decode_event
from app.local.replay import airport_zones, read_flights, to_event


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(project_id="docs-test"))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict:
    return client.get("/schema/openapi.json").json()


def test_the_docs_page_loads_every_asset_from_this_service(client: TestClient) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert len(urls) >= 4  # script bundle, preset, stylesheet, icon
    assert all(url.startswith("/schema/assets/") for url in urls), urls
    assert not re.search(r"https?://", page.text.split("<body>")[0])
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url


def test_the_swagger_bundle_is_a_real_build(client: TestClient) -> None:
    bundle = client.get("/schema/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content


def test_every_operation_has_an_id_and_examples(spec: dict) -> None:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"], (method, path)
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    assert media.get("examples"), (method, path, status)
            for parameter in operation.get("parameters", []):
                assert parameter["schema"].get("examples"), (method, path, parameter["name"])
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    (example,) = body["examples"].values()
    assert decode_event(json.dumps(example["value"])).event_id == EXAMPLE_EVENT["event_id"]


def test_links_chain_publish_list_and_lookup(spec: dict) -> None:
    operation_ids = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    publish = spec["paths"]["/v1/events"]["post"]["responses"]["202"]["links"]
    listing = spec["paths"]["/v1/flights"]["get"]["responses"]["200"]["links"]
    assert publish["GetPublishedFlight"] == {
        "operationId": "getFlight",
        "parameters": {"event_id": "$response.body#/event_id"},
        "description": publish["GetPublishedFlight"]["description"],
    }
    assert listing["GetListedFlight"]["parameters"] == {"event_id": "$response.body#/items/0/event_id"}
    assert listing["NextPage"]["parameters"] == {"cursor": "$response.body#/next_cursor"}
    linked = {link["operationId"] for link in (publish | listing).values()}
    assert linked <= operation_ids


def test_date_parameters_state_their_range(spec: dict) -> None:
    parameters = {p["name"]: p for p in spec["paths"]["/v1/flights"]["get"]["parameters"]}
    pattern = re.compile(parameters["from"]["schema"]["pattern"])
    assert pattern.match("2013-01-01")
    assert pattern.match("2099-12-31")
    assert not pattern.match("1999-12-31")
    assert not pattern.match("2100-01-01")
    assert "from_" not in parameters


def test_the_example_event_is_the_first_replayed_flight() -> None:
    first = next(read_flights(date(2013, 1, 1), days=1))
    assert to_event(first, airport_zones()) == decode_event(json.dumps(EXAMPLE_EVENT))


class NoFlights:
    """A warehouse that has no flight: the lookup answers its 404."""

    def get_flight(self, event_id: str, on: date | None, include_synthetic: bool = False) -> None:
        return None

    def close(self) -> None:
        pass


# Requests that make an operation answer a documented error, to compare with its example.
TOO_BIG = b"{" + b" " * 9000 + b"}"
WRONG_TYPE = json.dumps(EXAMPLE_EVENT | {"carrier": 7}).encode()
JSON_BODY = {"content-type": "application/json"}
PROVOKED: dict[tuple[str, str, str], dict] = {
    ("post", "/v1/events", "400"): {"content": WRONG_TYPE, "headers": JSON_BODY},
    ("post", "/v1/events", "401"): {
        "content": WRONG_TYPE,
        "headers": JSON_BODY,
        "publish_auth": "google-id-token",
    },
    ("post", "/v1/events", "413"): {"content": TOO_BIG, "headers": JSON_BODY},
    ("post", "/v1/events", "415"): {"content": WRONG_TYPE, "headers": {"content-type": "text/plain"}},
    ("get", "/v1/flights", "400"): {"url": "/v1/flights?limit=1&limit=2"},
    ("get", "/v1/flights/{event_id}", "400"): {
        "url": f"/v1/flights/{EXAMPLE_EVENT['event_id']}?on=2013-13-01"
    },
    ("get", "/v1/flights/{event_id}", "404"): {"url": f"/v1/flights/{EXAMPLE_EVENT['event_id']}"},
}
# Documented errors no offline request provokes here: shared ones (429, 503; their text names no
# operation) and the publisher refusal, which needs a signed token (tests/unit/test_publish_auth.py).
NOT_PROVOKED = {
    ("post", "/v1/events", "403"),
    ("get", "/ready", "503"),
    *(
        (method, path, status)
        for method, path in (
            ("post", "/v1/events"),
            ("get", "/v1/flights"),
            ("get", "/v1/flights/{event_id}"),
        )
        for status in ("429", "503")
    ),
}


def problem_examples(spec: dict) -> dict[tuple[str, str, str], dict]:
    return {
        (method, path, status): example["value"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        for example in response.get("content", {})
        .get("application/problem+json", {})
        .get("examples", {})
        .values()
    }


def test_every_error_example_is_its_operations_own(spec: dict) -> None:
    """Each problem example carries its response's status, and is what that operation really answers."""
    examples = problem_examples(spec)
    assert examples.keys() == PROVOKED.keys() | NOT_PROVOKED  # a new error response needs a decision here
    for (method, path, status), value in examples.items():
        assert value["status"] == int(status), (method, path)
    for key, recipe in PROVOKED.items():
        method, path, status = key
        recipe = dict(recipe)
        services = Services(Settings(project_id="docs-test", publish_auth=recipe.pop("publish_auth", "none")))
        services.__dict__["warehouse"] = NoFlights()
        with TestClient(create_app(services=services)) as client:
            response = client.request(method.upper(), recipe.pop("url", path), **recipe)
        assert response.status_code == int(status), (key, response.text)
        assert response.json()["detail"] == examples[key]["detail"], key
