"""Bad requests get a 4xx problem document, an unreachable backend a 503; never a bare 500.

These run without any backend: validation happens before the service touches one.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
import uvicorn
from litestar.testing import TestClient

from app.api.__main__ import SERVER_OPTIONS
from app.api.cursor import PageCursor, decode_cursor, encode_cursor
from app.api.events import MAX_EVENT_BYTES
from app.api.flights import latest_event_day, resolve_window
from app.api.main import create_app
from app.api.settings import Settings
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import FlightEvent, encode_event
from app.local.processes import free_port

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # A BigQuery endpoint nobody listens on: any query the app makes fails fast.
    settings = Settings(
        project_id="errors-test", bigquery_api_endpoint="http://127.0.0.1:9", publish_auth="none"
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


def event_with(**changes: object) -> bytes:
    return json.dumps(EXAMPLE_EVENT | changes).encode()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"{not json", None),
        (b"[]", None),
        (event_with(unknown_field=1), None),
        (event_with(flight_number="one"), "flight_number"),
        (json.dumps({k: v for k, v in EXAMPLE_EVENT.items() if k != "carrier"}).encode(), None),
        (event_with(event_time="2013-01-01T10:15:00"), "event_time"),
        (event_with(scheduled_arrival=EXAMPLE_EVENT["scheduled_departure"]), None),
        # Strict JSON types: no coercion of strings, floats or strings-as-booleans.
        (event_with(flight_number="1545"), "flight_number"),
        (event_with(flight_number=1545.0), "flight_number"),
        (event_with(cancelled="false"), "cancelled"),
        (event_with(cancelled=0), "cancelled"),
        (event_with(distance_miles=True), "distance_miles"),
        (event_with(carrier=["UA"]), "carrier"),
        (event_with(tail_number=12345), "tail_number"),
        # Bounded timestamps: outside 2000-2099, or an event time in the future.
        (event_with(event_time="9999-12-31T23:00:00Z"), None),
        (event_with(event_time="1969-12-31T23:00:00Z"), None),
        (event_with(event_time="0001-01-01T00:00:00+01:00"), None),
        (event_with(scheduled_departure="9999-12-31T23:59:59-01:00"), None),
        (event_with(actual_arrival="2100-01-01T00:00:00Z"), None),
        (event_with(event_time=(datetime.now(UTC) + timedelta(days=2)).isoformat()), None),
    ],
    ids=[
        "malformed",
        "not-an-object",
        "unknown-field",
        "wrong-type",
        "missing-required",
        "naive-time",
        "rule",
        "string-for-int",
        "float-for-int",
        "string-for-bool",
        "int-for-bool",
        "bool-for-int",
        "array-for-string",
        "int-for-string",
        "year-9999",
        "before-2000",
        "year-1-with-offset",
        "overflowing-offset",
        "year-2100",
        "future-event-time",
    ],
)
def test_bad_events_are_rejected_with_a_problem(client: TestClient, body: bytes, key: str | None) -> None:
    problem = assert_problem(client.post("/v1/events", content=body, headers=JSON), 400)
    if key is not None:
        assert problem["errors"][0]["key"] == key


def test_an_event_the_contract_accepts_is_only_refused_by_the_unreachable_topic(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example event passes validation: the request gets as far as publishing."""
    event = msgspec.json.decode(event_with(event_time="2013-01-01T10:15:00+00:00"), type=FlightEvent)
    assert encode_event(event)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    settings = Settings(
        project_id="errors-test", bigquery_api_endpoint="http://127.0.0.1:9", publish_auth="none"
    )
    with TestClient(create_app(settings)) as down:
        response = down.post("/v1/events", content=event_with(), headers=JSON)
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "2"
    assert "unavailable" in problem["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_other_media_types_are_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_problem(client.post("/v1/events", content=event_with(), headers=headers), 415)


def test_an_empty_body_is_a_400(client: TestClient) -> None:
    assert_problem(client.post("/v1/events", headers=JSON), 400)


def test_bodies_larger_than_one_event_are_413(client: TestClient) -> None:
    padded = event_with()[:-1] + b" " * MAX_EVENT_BYTES + b"}"
    assert_problem(client.post("/v1/events", content=padded, headers=JSON), 413)
    assert_problem(client.post("/v1/events", content=b" " * 5_000_000, headers=JSON), 413)


def test_the_largest_possible_event_fits_the_body_limit() -> None:
    widest = EXAMPLE_EVENT | {
        "event_id": "e" * 64,
        "tail_number": "N" * 8,
        "event_time": "2013-01-01T10:15:00.123456+00:00",
        "scheduled_departure": "2013-01-01T10:15:00.123456+00:00",
        "actual_departure": "2013-01-01T10:17:00.123456+00:00",
        "scheduled_arrival": "2013-01-01T14:19:00.123456+00:00",
        "actual_arrival": "2013-01-01T14:30:00.123456+00:00",
        "departure_delay_minutes": -1440,
        "arrival_delay_minutes": -1440,
    }
    assert len(json.dumps(widest, indent=4)) * 4 < MAX_EVENT_BYTES


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("from=0.5", "from"),
        ("from=2013-13-01", "from"),
        ("from=abc", "from"),
        ("carrier=united", "carrier"),
        ("origin=jfk", "origin"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=" + "0" * 40, "cursor"),
        ("from=2013-01-10&to=2013-01-01", "to"),
        ("from=2013-01-01&to=2013-03-01", "to"),
        ("to=0001-01-03", "to"),
        ("from=9999-12-31", "from"),
        ("from=1999-12-31", "from"),
        ("to=2100-01-01", "to"),
        # One value per parameter, and only the parameters the operation takes.
        ("limit=1&limit=500", "limit"),
        ("limit=abc&limit=2", "limit"),
        ("from=2013-01-01&from=2013-02-01", "from"),
        ("form=2013-01-01", "form"),
        ("from_=2013-01-01", "from_"),
    ],
)
def test_bad_list_queries_are_rejected_with_a_problem(client: TestClient, query: str, key: str) -> None:
    problem = assert_problem(client.get(f"/v1/flights?{query}"), 400)
    assert [e["key"] for e in problem["errors"]] == [key]
    assert "from_" not in problem["detail"] or key == "from_"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/flights/" + "x" * 65,
        "/v1/flights/-leading-dash",
        "/v1/flights/abc?on=9999-12-31",
        "/v1/flights/abc?on=0001-01-01",
        "/v1/flights/abc?on=2013-01-01&on=2013-01-02",
        "/v1/flights/abc?day=2013-01-01",
        "/health?verbose=1",
    ],
)
def test_bad_lookups_are_rejected_with_a_problem(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 400)


def test_a_cursor_carries_its_query_and_refuses_another() -> None:
    cursor = PageCursor(
        after_time=datetime(2013, 1, 2, 3, 4, tzinfo=UTC),
        after_id="x",
        first=date(2013, 1, 1),
        last=date(2013, 1, 7),
        carrier="UA",
    )
    assert decode_cursor(encode_cursor(cursor)) == cursor
    settings = Settings(project_id="errors-test", bigquery_api_endpoint="http://127.0.0.1:9")
    with TestClient(create_app(settings)) as client:
        text = encode_cursor(cursor)
        problem = assert_problem(client.get("/v1/flights", params={"cursor": text, "carrier": "AA"}), 400)
        assert "carrier" in problem["detail"]
        # A hand-made cursor is held to the same bounds as a query string.
        too_long = msgspec.structs.replace(cursor, last=date(2013, 3, 1))
        assert_problem(client.get("/v1/flights", params={"cursor": encode_cursor(too_long)}), 400)
        out_of_range = msgspec.structs.replace(cursor, first=date(1999, 12, 30), last=date(1999, 12, 31))
        assert_problem(client.get("/v1/flights", params={"cursor": encode_cursor(out_of_range)}), 400)


def test_unreachable_warehouse_is_a_503_with_retry_after(client: TestClient) -> None:
    response = client.get("/v1/flights?from=2013-01-01&to=2013-01-02")
    body = assert_problem(response, 503)
    assert "unavailable" in body["detail"]
    assert response.headers["retry-after"] == "2"
    assert_problem(client.get("/v1/flights"), 503)  # the default window needs the warehouse too
    assert_problem(client.get("/ready"), 503)


def test_liveness_needs_no_backend(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/nothing", 404),
        ("DELETE", "/v1/events", 405),
        ("PUT", "/v1/flights", 405),
        ("GET", "/schema/scalar", 404),
        ("GET", "/schema/redoc", 404),
        ("GET", "/schema/nothing/here", 404),
        ("GET", "/schema/openapi.yaml", 404),
        ("GET", "/schema/assets/nothing.js", 404),
        ("POST", "/schema", 405),
    ],
)
def test_every_error_on_every_path_is_a_problem(
    client: TestClient, method: str, path: str, status: int
) -> None:
    assert_problem(client.request(method, path), status)


def test_default_window_is_the_week_ending_on_the_newest_day() -> None:
    assert resolve_window(None, None, date(2013, 1, 9)) == (date(2013, 1, 3), date(2013, 1, 9))
    assert resolve_window(date(2013, 1, 1), None, None) == (date(2013, 1, 1), date(2013, 1, 7))
    assert resolve_window(None, date(2013, 1, 7), None) == (date(2013, 1, 1), date(2013, 1, 7))
    today = datetime.now(UTC).date()
    assert resolve_window(None, None, None)[1] == today  # no data yet
    # Data far in the future cannot move the default: the newest day asked for is tomorrow at most.
    assert latest_event_day() == today + timedelta(days=1)


def test_windows_at_the_edges_of_the_range_do_not_overflow() -> None:
    assert resolve_window(None, date(2000, 1, 2), None) == (date(2000, 1, 1), date(2000, 1, 2))
    assert resolve_window(date(2099, 12, 30), None, None) == (date(2099, 12, 30), date(2099, 12, 31))


# Every decoder the API uses, fed what its library raises outside its documented error family.
# msgspec raises UnicodeDecodeError (a ValueError, not a msgspec.MsgspecError) for invalid UTF-8
# inside a JSON string; Litestar percent-decodes query strings and paths with replacement
# characters; headers are latin-1 by HTTP's definition; a cursor is base64 of msgspec JSON.
def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_id": "\xff\xfe"}',  # invalid UTF-8 inside a string (issue 19)
        event_with()[:-1] + b', "tail_number": "N\xc3"}',  # a truncated UTF-8 sequence
        b'{"event_id": "\xed\xa0\x80"}',  # an encoded surrogate
        b"\xff\xfe{\x00}\x00",  # UTF-16 with a byte-order mark
        b'\xef\xbb\xbf{"event_id": "x"}',  # UTF-8 byte-order mark
        b'{"event_id": "\\ud800"}',  # a lone surrogate escape
        b'{"flight_number": 1' + b"0" * 4000 + b"}",  # an overlong number
        b'{"distance_miles": NaN}',
        b'{"distance_miles": Infinity}',
        b'{"distance_miles": 1e999}',
        b"[" * 4000,  # deep nesting
    ],
    ids=[
        "invalid-utf8-in-string",
        "truncated-utf8",
        "encoded-surrogate",
        "utf16",
        "utf8-bom",
        "lone-surrogate-escape",
        "overlong-number",
        "nan",
        "infinity",
        "huge-exponent",
        "deep-nesting",
    ],
)
def test_undecodable_bodies_are_400(client: TestClient, body: bytes) -> None:
    assert_problem(client.post("/v1/events", content=body, headers=JSON), 400)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("limit=%FF", "limit"),
        ("limit=%ED%A0%80", "limit"),
        ("carrier=%FF%FE", "carrier"),
        ("origin=%F0%9F%98%80", "origin"),
        ("from=%C3%28", "from"),
        ("limit=" + "9" * 5000, "limit"),
        ("limit=NaN", "limit"),
        ("limit=1e3", "limit"),
        ("limit=%00", "limit"),
        ("%FF=1", "\ufffd"),
        ("cursor=%FF%FE", "cursor"),
        ("cursor=" + cursor_of(b'["\xff"]'), "cursor"),
        ("cursor=" + cursor_of(b'["\\ud800", "x", "2013-01-01", "2013-01-02"]'), "cursor"),
        ("cursor=" + cursor_of(b"[1e999]"), "cursor"),
        ("cursor=" + cursor_of(b"[NaN]"), "cursor"),
        ("cursor=" + cursor_of(b"[" * 200), "cursor"),
    ],
)
def test_undecodable_query_values_are_400_naming_the_parameter(
    client: TestClient, query: str, key: str
) -> None:
    problem = assert_problem(client.get(f"/v1/flights?{query}"), 400)
    assert [e["key"] for e in problem["errors"]] == [key]


@pytest.mark.parametrize("path", ["/v1/flights/%FF%FE", "/v1/flights/%ED%A0%80", "/v1/flights/%C0%AF"])
def test_undecodable_paths_are_400(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 400)


@pytest.mark.parametrize(
    "headers",
    [
        {"if-none-match": b"\xff\xfe"},
        {"x-request-id": b"\xff"},
        {"traceparent": b"\xff-\xfe"},
        {"x-cloud-trace-context": b"0123456789abcdef0123456789abcdef/" + b"9" * 40 + b";o=1"},
        {"x-forwarded-for": b"\xff\xfe, 10.0.0.1"},
    ],
    ids=["if-none-match", "request-id", "traceparent", "cloud-trace-overlong-span", "forwarded-for"],
)
def test_undecodable_headers_on_reads_are_never_a_500(client: TestClient, headers: dict[str, bytes]) -> None:
    assert client.get("/v1/flights?limit=0", headers=headers).status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": b"application/json; charset=\xff"},
        {"content-type": b"\xff\xfe"},
        {"content-type": b"application/json", "content-length": b"\xff"},
    ],
    ids=["charset", "media-type", "content-length"],
)
def test_undecodable_headers_on_publish_are_4xx(client: TestClient, headers: dict[str, bytes]) -> None:
    response = client.post("/v1/events", content=b"{}", headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture(scope="module")
def served() -> Iterator[int]:
    """The app behind uvicorn with the service's own server options, as `python -m app.api` serves it."""
    settings = Settings(
        project_id="errors-test", bigquery_api_endpoint="http://127.0.0.1:9", publish_auth="none"
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, **SERVER_OPTIONS)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def raw_status(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_raw_invalid_utf8_in_a_body_string_is_a_400_problem_over_http(served: int) -> None:
    body = b'{"event_id": "\xff\xfe"}'
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    status, answer = raw_status(served, request)
    assert status == 400
    assert json.loads(answer)["detail"] == "The body is not a JSON document."


@pytest.mark.parametrize("target", [b"/v1/flights?limit=\xff", b"/v1/flights/\xff\xfe", b"/v1/\xed\xa0\x80"])
def test_raw_non_ascii_request_targets_never_reach_the_app(served: int, target: bytes) -> None:
    """uvicorn's httptools parser refuses them with 400 (Litestar would fail to decode such a query)."""
    status, _ = raw_status(served, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 400
