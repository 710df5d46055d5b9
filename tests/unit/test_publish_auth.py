"""Who may publish: Google-signed ID tokens of allow-listed principals; 401 and 403 problems otherwise.

A local server plays Google's certificate endpoint with a key made here, so tokens are signed and
checked for real (signature, expiry, issuer, audience) without the internet. `CloudRunIam` puts
Cloud Run's documented invoker check in front of the app, so the publishing path is proven as it
runs behind an IAM-protected service.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from google.auth.exceptions import GoogleAuthError
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.contract.examples import EXAMPLE_EVENT

AUDIENCE = "https://testserver.local"  # the URL the test client sends requests to
PUBLISHER = "feed@airline-data-dev.iam.gserviceaccount.com"
JSON = {"content-type": "application/json"}


def key_pair(key_id: str) -> tuple[crypt.RSASigner, str]:
    """A signer and the X.509 certificate Google would publish for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, key_id)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return crypt.RSASigner.from_string(pem, key_id=key_id), cert.public_bytes(
        serialization.Encoding.PEM
    ).decode()


GOOGLE, GOOGLE_CERT = key_pair("google-1")
ROTATED, ROTATED_CERT = key_pair("google-2")
STRANGER, _ = key_pair("google-1")  # claims Google's key id, signed with another key


class CertServer:
    """Serves `certs` as Google's v1 certificate endpoint does, and counts the fetches."""

    def __init__(self) -> None:
        self.certs = {"google-1": GOOGLE_CERT}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.certs).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oauth2/v1/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish(self, topic: str, data: bytes, **_: Any) -> Future[str]:
        self.published.append(data)
        future: Future[str] = Future()
        future.set_result(str(len(self.published)))
        return future

    def stop(self) -> None:
        pass


def token(signer: crypt.RSASigner = GOOGLE, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1234567890",
        "email": PUBLISHER,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
    } | claims
    return jwt.encode(signer, {k: v for k, v in payload.items() if v is not None}).decode()


@pytest.fixture(scope="module")
def certs() -> Iterator[CertServer]:
    server = CertServer()
    yield server
    server.server.shutdown()


@contextlib.contextmanager
def serve(certs: CertServer, wrap: Any = None, **settings: Any) -> Iterator[tuple[TestClient, FakePublisher]]:
    services = Services(
        Settings(
            project_id="auth-test",
            publish_auth="google-id-token",
            publishers=(f"serviceAccount:{PUBLISHER}", "user:analyst@example.com"),
            token_certs_url=certs.url,
            **settings,
        )
    )
    publisher = FakePublisher()
    services.__dict__["publisher"] = publisher
    app = create_app(services=services)
    with TestClient(wrap(app) if wrap else app) as client:
        yield client, publisher


@pytest.fixture
def api(certs: CertServer) -> Iterator[tuple[TestClient, FakePublisher]]:
    with serve(certs) as served:
        yield served


def publish(client: TestClient, bearer: str | None) -> Any:
    headers = JSON | ({"Authorization": f"Bearer {bearer}"} if bearer is not None else {})
    return client.post("/v1/events", content=json.dumps(EXAMPLE_EVENT), headers=headers)


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_allow_listed_service_account_publishes(api) -> None:
    client, publisher = api
    assert publish(client, token()).status_code == 202
    assert publish(client, token(email="analyst@example.com")).status_code == 202
    assert len(publisher.published) == 2


@pytest.mark.parametrize(
    "bearer",
    [
        None,
        "",
        "not-a-jwt",
        token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        token(aud="https://another-service.run.app"),
        token(iss="https://evil.example.com"),
        token(signer=STRANGER),
    ],
    ids=["no-token", "empty", "malformed", "expired", "other-audience", "other-issuer", "forged-signature"],
)
def test_no_valid_google_token_is_a_401(api, bearer: str | None) -> None:
    client, publisher = api
    response = publish(client, bearer)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert publisher.published == []


@pytest.mark.parametrize(
    "claims",
    [{"email": "someone-else@example.com"}, {"email_verified": False}, {"email": None}],
    ids=["not-on-the-list", "unverified-email", "no-email"],
)
def test_a_valid_token_of_someone_not_allowed_is_a_403(api, claims: dict[str, Any]) -> None:
    client, publisher = api
    assert_problem(publish(client, token(**claims)), 403)
    assert publisher.published == []


def test_reads_need_no_publish_token(api) -> None:
    client, _ = api
    assert client.get("/health").status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200


def test_googles_certificates_are_cached_and_refetched_for_a_new_key(api, certs: CertServer) -> None:
    client, _ = api
    before = certs.fetches
    for _ in range(5):
        assert publish(client, token()).status_code == 202
    assert certs.fetches == before + 1  # one fetch for five verifications
    certs.certs["google-2"] = ROTATED_CERT  # Google rotates its keys
    assert publish(client, token(signer=ROTATED)).status_code == 202
    assert certs.fetches == before + 2


def test_publishing_is_never_anonymous_by_default() -> None:
    assert Settings(project_id="p").publish_auth == "google-id-token"
    with pytest.raises(ValueError, match="APP_PUBLISH_AUTH"):
        Settings(project_id="p", publish_auth="anyone")


# --- Behind Cloud Run IAM ----------------------------------------------------------------------

CONSUMER = "reader@airline-data-dev.iam.gserviceaccount.com"  # an invoker, not a publisher
OUTSIDER = "stranger@elsewhere.iam.gserviceaccount.com"  # neither


class CloudRunIam:
    """Cloud Run's invoker check as Google documents it, in front of the app.

    https://cloud.google.com/run/docs/authenticating/service-to-service: the caller's Google-signed
    ID token (audience: the service URL) goes in `Authorization` or in `X-Serverless-Authorization`;
    when the latter is present Cloud Run checks it and leaves `Authorization` untouched. The header
    it checked reaches the container with the signature replaced by `SIGNATURE_REMOVED_BY_GOOGLE`.
    A missing or invalid token is refused with 401, a caller without `run.invoker` with 403, both
    before the container sees the request. `public` is `allUsers` holding the invoker role.
    """

    def __init__(self, app: ASGIApp, invokers: set[str], public: bool = False) -> None:
        self.app, self.invokers, self.public = app, invokers, public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.public:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        checked = b"authorization"
        if b"x-serverless-authorization" in headers:
            checked = b"x-serverless-authorization"
        scheme, _, bearer = headers.get(checked, b"").decode().partition(" ")
        try:
            claims = jwt.decode(bearer, certs={"google-1": GOOGLE_CERT}, audience=AUDIENCE)
        except (ValueError, GoogleAuthError):
            await self._refuse(send, 401)
            return
        if scheme.lower() != "bearer" or claims.get("email") not in self.invokers:
            await self._refuse(send, 403)
            return
        stripped = f"Bearer {bearer.rpartition('.')[0]}.SIGNATURE_REMOVED_BY_GOOGLE".encode()
        forwarded = [(name, stripped if name == checked else value) for name, value in scope["headers"]]
        await self.app(scope | {"headers": forwarded}, receive, send)

    @staticmethod
    async def _refuse(send: Send, status: int) -> None:
        start = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/html")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"<html>Google front end</html>"})


def behind_iam(public: bool = False) -> Any:
    return lambda app: CloudRunIam(app, {PUBLISHER, CONSUMER}, public=public)


def call_as(client: TestClient, email: str, mode: str, authorization: str | None = None) -> Any:
    """POST an event the way a caller does in `mode`: its token in Authorization, or in both headers."""
    bearer = f"Bearer {token(email=email)}"
    headers = JSON | {"Authorization": authorization or bearer}
    if mode == "x-serverless-authorization":
        headers["X-Serverless-Authorization"] = bearer
    return client.post("/v1/events", content=json.dumps(EXAMPLE_EVENT), headers=headers)


MODES = ["authorization", "x-serverless-authorization"]


@pytest.mark.parametrize("mode", MODES)
def test_behind_cloud_run_iam_a_publisher_is_accepted_and_outsiders_refused(
    certs: CertServer, mode: str
) -> None:
    with serve(certs, wrap=behind_iam(), trust_cloud_run_iam=True) as (client, publisher):
        assert call_as(client, PUBLISHER, mode).status_code == 202
        assert_problem(call_as(client, CONSUMER, mode), 403)  # an invoker, refused by the app
        outsider = call_as(client, OUTSIDER, mode)  # refused by Cloud Run before the app
        assert outsider.status_code == 403
        assert not outsider.headers["content-type"].startswith("application/problem+json")
        assert len(publisher.published) == 1


def test_an_invoker_cannot_pass_off_a_stripped_token_as_a_publishers(certs: CertServer) -> None:
    """Next to X-Serverless-Authorization, Cloud Run never checked Authorization: a stripped one is words."""
    forged = f"Bearer {token(email=PUBLISHER).rpartition('.')[0]}.SIGNATURE_REMOVED_BY_GOOGLE"
    with serve(certs, wrap=behind_iam(), trust_cloud_run_iam=True) as (client, publisher):
        response = call_as(client, CONSUMER, "x-serverless-authorization", authorization=forged)
        assert_problem(response, 401)
        assert "X-Serverless-Authorization" in response.json()["detail"]
        assert publisher.published == []


def test_where_anyone_may_invoke_a_stripped_token_is_refused_and_the_remedy_named(certs: CertServer) -> None:
    """Dev (allUsers): nothing guarantees Cloud Run checked a token, so only a signed one counts."""
    forged = f"Bearer {token(email=PUBLISHER).rpartition('.')[0]}.SIGNATURE_REMOVED_BY_GOOGLE"
    with serve(certs, wrap=behind_iam(public=True)) as (client, publisher):
        response = call_as(client, OUTSIDER, "authorization", authorization=forged)
        assert_problem(response, 401)
        assert "X-Serverless-Authorization" in response.json()["detail"]
        assert call_as(client, PUBLISHER, "x-serverless-authorization").status_code == 202
        assert call_as(client, OUTSIDER, "x-serverless-authorization").status_code == 403
        assert len(publisher.published) == 1


def test_a_stripped_token_must_still_be_for_this_service(certs: CertServer) -> None:
    other = token(aud="https://another-service.run.app").rpartition(".")[0]
    with serve(certs, trust_cloud_run_iam=True) as (client, publisher):
        response = client.post(
            "/v1/events",
            content=json.dumps(EXAMPLE_EVENT),
            headers=JSON | {"Authorization": f"Bearer {other}.SIGNATURE_REMOVED_BY_GOOGLE"},
        )
        assert_problem(response, 401)
        assert publisher.published == []
