"""Accept flight events and publish them to the ingest topic.

The body is decoded by the contract's own strict decoder, not Litestar's lenient one: a
string where the contract wants a number, or a number where it wants a boolean, is refused
rather than coerced, exactly as the warehouse would refuse it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import Example, Link
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from app.api.auth import require_publisher
from app.api.openapi import OperationDocs, documented, json_body
from app.api.problems import RATE_LIMITED, UNAVAILABLE, problem_responses, too_large
from app.api.services import Services
from app.api.telemetry import annotate
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import FlightEvent, decode_event, encode_event
from app.contract.synthetic import HEADER, MARK, attributes

# A maximal event encodes to well under 1 KiB; the limit leaves room for pretty-printing.
MAX_EVENT_BYTES = 8 * 1024
_ERROR_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)


class Accepted(msgspec.Struct):
    """The event is on the topic; it reaches the warehouse asynchronously."""

    event_id: str
    message_id: str
    # Marked synthetic (X-Synthetic: true): kept out of analysts' data and default reads.
    synthetic: bool = False


def _invalid_event(exc: msgspec.MsgspecError) -> ValidationException:
    if not isinstance(exc, msgspec.ValidationError):
        return ValidationException("The body is not a JSON document.", extra=[{"message": str(exc)}])
    match = _ERROR_PATH.match(str(exc))
    message, path = (match["message"], match["path"]) if match else (str(exc), None)
    error: dict[str, Any] = {"message": message, "source": "body"}
    if path:
        error["key"] = path
    return ValidationException(f"The event breaks the contract: {exc}", extra=[error])


PUBLISH_DOCS = OperationDocs(
    request_body=json_body(
        FlightEvent.__name__,
        "One flight event, checked against the contract with strict JSON types.",
        {"first-flight-of-2013": Example(summary="UA 1545 EWR-IAH, 2013-01-01", value=EXAMPLE_EVENT)},
    ),
    links={
        "202": {
            "GetPublishedFlight": Link(
                operation_id="getFlight",
                parameters={"event_id": "$response.body#/event_id"},
                description="Read the event back once the warehouse has it (usually within seconds).",
            )
        }
    },
    response_examples={
        "202": {"accepted": Example(value={"event_id": EXAMPLE_EVENT["event_id"], "message_id": "12345"})}
    },
)


SyntheticMark = Annotated[
    Literal["true"] | None,
    HeaderParameter(
        name=HEADER,
        description="`true` marks the event synthetic (a test of the deployed pipeline): stored, but left "
        "out of analysts' view and of reads that do not ask for it. Only the stack's synthetic publishers "
        "may send it.",
        examples=[Example(summary="the deploy canary's events", value="true")],
    ),
]


@post(
    "/v1/events",
    operation_id="publishEvent",
    tags=["events"],
    summary="Publish a flight event",
    status_code=202,
    request_max_body_size=MAX_EVENT_BYTES,
    guards=[require_publisher],
    security=[{"GoogleIdToken": []}],
    operation_class=documented(PUBLISH_DOCS),
    responses=problem_responses(
        {
            400: "The event breaks the contract: Expected `str`, got `int` - at `$.carrier`",
            401: "Publishing needs a Google-signed ID token: Authorization: Bearer <token>.",
            403: "serviceAccount:someone@example.iam.gserviceaccount.com may not publish flight events here.",
            413: too_large(MAX_EVENT_BYTES),
            415: "Send the event as `Content-Type: application/json`.",
            429: RATE_LIMITED,
            503: UNAVAILABLE,
        }
    ),
)
async def publish_event(
    request: Request[Any, Any, Any], services: NamedDependency[Services], synthetic_mark: SyntheticMark = None
) -> Accepted:
    """Validates the event against the contract, then publishes it; 202 once Pub/Sub has it."""
    body = await request.body()
    if not body:
        annotate(rejected="empty")
        raise ValidationException("The request has no body; send one flight event as JSON.")
    if request.content_type[0] != "application/json":
        annotate(rejected="media-type")
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="Send the event as `Content-Type: application/json`.",
        )
    try:
        event = decode_event(body)
    except msgspec.MsgspecError as exc:
        annotate(rejected="contract")
        raise _invalid_event(exc) from None
    synthetic = synthetic_mark == MARK
    message_id = await services.publish(encode_event(event), source="api", **attributes(synthetic))
    return Accepted(event_id=event.event_id, message_id=message_id, synthetic=synthetic)
