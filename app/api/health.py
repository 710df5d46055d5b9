"""Liveness (the process answers) and readiness (its backends answer)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import Example

from app.api.openapi import OperationDocs, documented
from app.api.problems import BACKEND_ERRORS, problem, problem_responses
from app.api.services import Services


class Health(msgspec.Struct):
    status: str


@get(
    "/health",
    operation_id="liveness",
    tags=["health"],
    summary="Liveness",
    operation_class=documented(
        OperationDocs(response_examples={"200": {"ok": Example(value={"status": "ok"})}})
    ),
)
async def health() -> Health:
    """Answers while the process runs; touches no backend."""
    return Health(status="ok")


async def _failure(name: str, check: Any) -> str | None:
    try:
        await check
    except BACKEND_ERRORS as exc:
        return f"{name}: {type(exc).__name__}"
    return None


@get(
    "/ready",
    operation_id="readiness",
    tags=["health"],
    summary="Readiness",
    responses=problem_responses({503: "not ready: pubsub: ServiceUnavailable"}),
    operation_class=documented(
        OperationDocs(response_examples={"200": {"ready": Example(value={"status": "ready"})}})
    ),
)
async def ready(services: NamedDependency[Services]) -> Response[Any]:
    """Checks, side by side and within the read deadline, that the topic and the table are reachable."""

    def topic_exists() -> None:  # needs pubsub.topics.get: roles/pubsub.viewer on the topic
        services.publisher.get_topic(
            request={"topic": services.topic_path}, timeout=services.settings.read_deadline_seconds
        )

    failed = [
        failure
        for failure in await asyncio.gather(
            _failure("pubsub", services.pubsub_breaker.call(lambda: services.call_blocking(topic_exists))),
            _failure("bigquery", services.read(services.warehouse.check)),
        )
        if failure
    ]
    if failed:
        return problem(503, "not ready: " + "; ".join(failed), headers={"Retry-After": "2"})
    return Response(Health(status="ready"))
