"""The Litestar application, wired in one place."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from app.api.events import publish_event
from app.api.flights import get_flight, list_flights
from app.api.health import healthz, readyz
from app.api.openapi import openapi_config
from app.api.problems import EXCEPTION_HANDLERS
from app.api.query_params import reject_unknown_or_repeated
from app.api.services import Services
from app.api.settings import Settings, get_settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    """Build the app for the given settings (the environment's by default) or prepared services."""
    services = services or Services(settings or get_settings())
    return Litestar(
        route_handlers=[healthz, readyz, list_flights, get_flight, publish_event],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        before_request=reject_unknown_or_repeated,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        on_shutdown=[services.close],
    )
