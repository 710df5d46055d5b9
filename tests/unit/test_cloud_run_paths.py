"""Every path callers use is one Cloud Run passes to the container.

Cloud Run's known issues (https://cloud.google.com/run/docs/known-issues, "Reserved URL paths")
reserve `/eventlog`, every path under `/_ah/` and some paths ending in `z` for Google's front end,
and advise avoiding every path that ends in `z`: an external `GET /healthz` is answered by Google,
never by the app, so the uptime check and Schemathesis would test Google's front end instead.
"""

from __future__ import annotations

import pytest
from airline_platform.service import HEALTH_PATH
from litestar import Litestar
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.settings import Settings

RESERVED_EXACT = ("/eventlog",)
RESERVED_PREFIXES = ("/_ah/",)


def reserved(path: str) -> bool:
    """True for a path Cloud Run's front end may answer itself (see the module docstring)."""
    path = path.rstrip("/") or "/"
    return path in RESERVED_EXACT or path.startswith(RESERVED_PREFIXES) or path.lower().endswith("z")


def route_paths() -> set[str]:
    """The paths of the Litestar app's route table, found under the plain ASGI layers around it."""
    app = create_app(Settings(project_id="paths-test"))
    while not isinstance(app, Litestar):
        app = app.app  # type: ignore[attr-defined]
    return {route.path for route in app.routes}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/healthz", True),
        ("/readyz", True),
        ("/statusz/", True),
        ("/eventlog", True),
        ("/_ah/warmup", True),
        ("/health", False),
        ("/v1/flights/{event_id}", False),
    ],
)
def test_the_rule_itself(path: str, expected: bool) -> None:
    assert reserved(path) is expected


def test_no_route_of_the_app_is_reserved_by_cloud_run() -> None:
    routes = route_paths()
    with TestClient(create_app(Settings(project_id="paths-test"))) as client:
        documented = set(client.get("/schema/openapi.json").json()["paths"])
    assert "/v1/events" in routes  # the tables are the real ones
    assert "/v1/events" in documented
    offending = sorted(path for path in routes | documented if reserved(path))
    assert not offending, f"paths Cloud Run reserves or advises against: {offending}"


def test_probes_and_the_uptime_check_call_a_route_of_the_app() -> None:
    assert HEALTH_PATH in route_paths()
    assert not reserved(HEALTH_PATH)
