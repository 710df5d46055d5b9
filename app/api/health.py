"""Liveness (the process answers) and readiness (its backends answer)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency

from app.api.problems import BACKEND_ERRORS, problem, problem_responses
from app.api.services import Services


class Health(msgspec.Struct):
    status: str


@get("/healthz", tags=["health"], summary="Liveness", sync_to_thread=False)
def healthz() -> Health:
    """Answers while the process runs; touches no backend."""
    return Health(status="ok")


@get(
    "/readyz",
    tags=["health"],
    summary="Readiness",
    sync_to_thread=True,
    responses=problem_responses(503),
)
def readyz(services: NamedDependency[Services]) -> Response[Any]:
    """Checks that the topic and the flights view are reachable."""
    failed = []
    try:
        services.publisher.get_topic(request={"topic": services.topic_path}, timeout=5)
    except BACKEND_ERRORS as exc:
        failed.append(f"pubsub: {type(exc).__name__}")
    try:
        services.warehouse.check()
    except BACKEND_ERRORS as exc:
        failed.append(f"bigquery: {type(exc).__name__}")
    if failed:
        return problem(503, "not ready: " + "; ".join(failed))
    return Response(Health(status="ready"))
