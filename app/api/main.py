"""The Litestar application, wired in one place."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from app.api.events import publish_event
from app.api.flights import get_flight, list_flights
from app.api.health import healthz, readyz
from app.api.problems import EXCEPTION_HANDLERS
from app.api.services import Services
from app.api.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app for the given settings (the environment's by default)."""
    services = Services(settings or get_settings())
    return Litestar(
        route_handlers=[healthz, readyz, list_flights, get_flight, publish_event],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Airline flights API",
            version="1.0.0",
            description="Flight events ingested through Pub/Sub and served from BigQuery.",
            path="/schema",
        ),
        on_shutdown=[services.close],
    )
