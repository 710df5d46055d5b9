"""Who may publish: callers proving a Google identity on the allow-list of the stack.

Reads stay behind Cloud Run IAM (`run.invoker`, or public in dev). Publishing writes into the
warehouse, so in the cloud `POST /v1/events` also demands a Google-signed ID token (the one
`gcloud auth print-identity-token` or the metadata server mints) whose verified email is on
the stack's allow-list of IAM members (`serviceAccount:…` or `user:…`; a token names no
groups). This holds in every environment, dev included, where anyone may call the service.

The token is checked with google-auth against Google's public certificates (cached for an
hour, refetched once on an unknown key id): signature, expiry, issuer, and the audience, which
must be the URL the request was sent to (Cloud Run routes by host, so a token minted for
another service cannot be replayed here) or one of the configured audiences. No token: 401.
A valid token of someone not on the list: 403.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.api.settings import Settings
from app.api.telemetry import annotate

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TTL_SECONDS = 3600.0
CLOCK_SKEW_SECONDS = 10
BEARER = {"WWW-Authenticate": 'Bearer realm="flight-api"'}


class TokenVerifier:
    """Verifies Google ID tokens; Google's certificates are fetched once an hour, not per request."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._certs: dict[str, str] = {}
        self._fetched_at = -CERTS_TTL_SECONDS
        self._session = requests.Session()

    def _fetch_certs(self) -> dict[str, str]:
        response = self._session.get(
            self._settings.token_certs_url, timeout=self._settings.read_deadline_seconds
        )
        response.raise_for_status()
        certs: dict[str, str] = json.loads(response.content)
        self._certs, self._fetched_at = certs, time.monotonic()
        return certs

    def _certs_for(self, token: str) -> dict[str, str]:
        expired = time.monotonic() - self._fetched_at > CERTS_TTL_SECONDS
        key_id = jwt.decode_header(token).get("kid")
        if expired or key_id not in self._certs:  # Google rotates its keys: refetch on an unknown one
            return self._fetch_certs()
        return self._certs

    def verify(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """The token's claims, or `ValueError` (bad token) / `requests` errors (certificates unreachable)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                certs=self._certs_for(token),
                audience=audiences,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except auth_exceptions.GoogleAuthError as exc:  # malformed, expired, wrong audience or signature
            raise ValueError(str(exc)) from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise ValueError(f"issuer {claims.get('iss')!r} is not Google")
        return claims


def principal_of(claims: dict[str, Any]) -> str | None:
    """The IAM member a verified token stands for, if its email is verified."""
    email = claims.get("email")
    if not email or claims.get("email_verified") is not True:
        return None
    return f"serviceAccount:{email}" if email.endswith(".gserviceaccount.com") else f"user:{email}"


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _audiences(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> list[str]:
    host = connection.headers.get("host", "")
    return [f"https://{host}", *settings.token_audiences]


async def require_publisher(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard of `POST /v1/events`: 401 without a valid token, 403 off the allow-list."""
    services = connection.app.state.services
    settings: Settings = services.settings
    if settings.publish_auth == "none":
        return
    token = _bearer(connection)
    if token is None:
        annotate(rejected="unauthenticated")
        raise NotAuthorizedException(
            "Publishing needs a Google-signed ID token: Authorization: Bearer <token>.", headers=BEARER
        )
    audiences = _audiences(connection, settings)
    try:
        # Blocking only when Google's certificates are fetched (hourly), so off the event loop.
        claims = await services.call_blocking(services.token_verifier.verify, token, audiences)
    except ValueError as exc:
        annotate(rejected="invalid-token")
        log.info("rejected a publish token: %s", exc)
        raise NotAuthorizedException(
            "The ID token is not valid here (signature, expiry, issuer or audience).",
            headers={"WWW-Authenticate": 'Bearer realm="flight-api", error="invalid_token"'},
        ) from None
    principal = principal_of(claims)
    annotate(principal=principal or claims.get("sub"))
    if principal is None or principal not in settings.publishers:
        annotate(rejected="not-a-publisher")
        raise PermissionDeniedException(f"{principal or 'this caller'} may not publish flight events here.")
