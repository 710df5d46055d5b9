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

Behind Cloud Run IAM (https://cloud.google.com/run/docs/authenticating/service-to-service),
Cloud Run checks the invoker's ID token itself and forwards the header it checked with the
token's signature replaced by `SIGNATURE_REMOVED_BY_GOOGLE`. It checks `X-Serverless-Authorization`
when a request carries one and then leaves `Authorization` untouched, else it checks
`Authorization`. So a publisher's identity is taken from one of:

- a Google-signed token in `Authorization`, verified here: callers that also send their invoker
  token in `X-Serverless-Authorization` (the canary, Schemathesis, every documented caller) work
  in every stack, public dev included;
- a token in `Authorization` whose signature Cloud Run removed, only when the stack enforces
  the invoker check (`trust_cloud_run_iam`: no `allUsers`) and the request has no
  `X-Serverless-Authorization`: then Cloud Run itself verified that very token. Anywhere else
  such a token is a forgery (anyone can write the words) and gets a 401 saying what to send.

docs/api.md ("Authentication through Cloud Run IAM") gives the reasons.
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
from app.contract.synthetic import HEADER as SYNTHETIC_HEADER

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TTL_SECONDS = 3600.0
CLOCK_SKEW_SECONDS = 10
BEARER = {"WWW-Authenticate": 'Bearer realm="flight-api"'}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="flight-api", error="invalid_token"'}
# What Cloud Run writes over the signature of the token it checked before forwarding it.
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
SERVERLESS_AUTHORIZATION = "x-serverless-authorization"


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
        return _from_google(claims)

    @staticmethod
    def checked_by_cloud_run(token: str, audiences: list[str]) -> dict[str, Any]:
        """The claims of a token Cloud Run verified and stripped; its audience and issuer still must fit."""
        try:
            claims: dict[str, Any] = jwt.decode(token, verify=False)
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise ValueError(str(exc)) from exc
        if claims.get("aud") not in audiences:
            raise ValueError(f"audience {claims.get('aud')!r} is not this service")
        return _from_google(claims)


def _from_google(claims: dict[str, Any]) -> dict[str, Any]:
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
        if token.rpartition(".")[2] != SIGNATURE_REMOVED:
            # Blocking only when Google's certificates are fetched (hourly), so off the event loop.
            claims = await services.call_blocking(services.token_verifier.verify, token, audiences)
        elif settings.trust_cloud_run_iam and SERVERLESS_AUTHORIZATION not in connection.headers:
            claims = services.token_verifier.checked_by_cloud_run(token, audiences)
        else:
            annotate(rejected="signature-removed")
            raise NotAuthorizedException(
                "Cloud Run removed this token's signature after its invoker check, so it proves nothing "
                "here: send your ID token in X-Serverless-Authorization (for Cloud Run) and in "
                "Authorization (for this service).",
                headers=INVALID_TOKEN,
            )
    except ValueError as exc:
        annotate(rejected="invalid-token")
        log.info("rejected a publish token: %s", exc)
        raise NotAuthorizedException(
            "The ID token is not valid here (signature, expiry, issuer or audience).", headers=INVALID_TOKEN
        ) from None
    principal = principal_of(claims)
    annotate(principal=principal or claims.get("sub"))
    if principal is None or principal not in settings.publishers:
        annotate(rejected="not-a-publisher")
        raise PermissionDeniedException(f"{principal or 'this caller'} may not publish flight events here.")
    if SYNTHETIC_HEADER in connection.headers and principal not in settings.synthetic_publishers:
        # A real producer's events must never vanish from analysts' data because of a copied header.
        annotate(rejected="synthetic-not-allowed")
        raise PermissionDeniedException(
            f"{principal} may publish, but not mark events {SYNTHETIC_HEADER}: only the stack's synthetic "
            "publishers (its deploy pipeline) may. Send real events without that header."
        )
