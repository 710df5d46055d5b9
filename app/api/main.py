"""The Litestar application, wired in one place, and the plain ASGI layers every request crosses first."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import msgspec
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import Example, OpenAPIResponse
from litestar.types import ASGIApp

from app.api.cached_reads import CachedReadsFastPath
from app.api.events import publish_event
from app.api.flights import get_flight, list_flights
from app.api.health import health, ready
from app.api.limits import RateLimit
from app.api.openapi import openapi_config
from app.api.problems import EXCEPTION_HANDLERS, ProblemDetails, too_many
from app.api.query_params import reject_unknown_or_repeated
from app.api.services import Services
from app.api.settings import Settings, get_settings
from app.api.telemetry import TelemetryMiddleware


def create_app(settings: Settings | None = None, services: Services | None = None) -> ASGIApp:
    """The served ASGI application for the given settings (the environment's by default) or services.

    The Litestar app sits behind plain ASGI layers, composed as the ASGI specification composes
    middleware (an application that calls another) and served by uvicorn like any ASGI app:
    telemetry, so that every request, even one no route answers (404, 405), gets its request id
    and trace context (and a refusal its line); and the cached-reads fast path, which answers fresh
    cache hits before the framework. Litestar's own `middleware=` cannot do either: Litestar runs it
    per route, after routing. Lifespan events pass through both layers to Litestar.

    Logging is configured by the process (`python -m app.api`), not here, so tests keep theirs.
    """
    services = services or Services(settings or get_settings())
    limit = (
        RateLimit(services.settings.rate_limit_per_minute)
        if services.settings.rate_limit_per_minute > 0
        else None
    )
    middleware: list[ASGIMiddleware] = [limit] if limit else []
    on_startup: list[Callable[[Litestar], None]] = [
        partial(_document_rate_limit, per_minute=services.settings.rate_limit_per_minute)
    ]
    if services.settings.publish_auth == "none":
        on_startup.append(_document_open_publishing)
    app = Litestar(
        route_handlers=[health, ready, list_flights, get_flight, publish_event],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        state=State({"services": services}),
        middleware=middleware,
        before_request=reject_unknown_or_repeated,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(
            services.settings.cache_ttl_seconds, services.settings.cache_not_found_ttl_seconds
        ),
        logging_config=None,
        on_startup=on_startup,
        on_shutdown=[services.close],
    )
    return TelemetryMiddleware(CachedReadsFastPath(app, services, limit))


def _document_rate_limit(app: Litestar, per_minute: int) -> None:
    """The 429 examples state this instance's limit (each stack sets its own); without one, no 429."""
    for path in (app.openapi_schema.paths or {}).values():
        for operation in (path.get, path.post):
            responses = operation.responses if operation is not None and operation.responses else {}
            response = responses.get("429")
            if not isinstance(response, OpenAPIResponse):
                continue
            if per_minute <= 0:
                del responses["429"]
                continue
            for media_type in (response.content or {}).values():
                for example in (media_type.examples or {}).values():
                    if isinstance(example, Example) and isinstance(example.value, ProblemDetails):
                        example.value = msgspec.structs.replace(example.value, detail=too_many(per_minute))


def _document_open_publishing(app: Litestar) -> None:
    """Where publishing needs no token (the local stack), the OpenAPI document must not ask for one."""
    paths = app.openapi_schema.paths or {}
    publish = paths["/v1/events"].post
    if publish is not None:
        publish.security = None
