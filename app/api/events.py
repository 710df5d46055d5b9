"""Accept flight events and publish them to the ingest topic."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from app.api.problems import problem_responses
from app.api.services import Services
from app.contract.flight_event import FlightEvent, encode_event


class Accepted(msgspec.Struct):
    """The event is on the topic; it reaches the warehouse asynchronously."""

    event_id: str
    message_id: str


@post(
    "/v1/events",
    tags=["events"],
    summary="Publish a flight event",
    status_code=202,
    sync_to_thread=True,
    responses=problem_responses(400, 503),
)
def publish_event(data: JSONBody[FlightEvent], services: NamedDependency[Services]) -> Accepted:
    """Validates the event against the contract, then publishes it; 202 once Pub/Sub has it."""
    future = services.publisher.publish(services.topic_path, encode_event(data), source="api")
    message_id = future.result(timeout=services.settings.publish_timeout_seconds)
    return Accepted(event_id=data.event_id, message_id=message_id)
