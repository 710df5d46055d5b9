"""The API's OpenAPI document and its interactive docs, complete and working offline.

- Swagger UI is served from the service itself (the pinned `swagger-ui-py` package carries
  its assets), so `/schema` works where no CDN is reachable.
- Every page under `/schema` that does not exist answers a problem document, like the API.
- Operations carry examples, and OpenAPI links (publish -> read back, list -> read one, list
  -> next page) that tell clients and Schemathesis's stateful phase how calls chain.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Response, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    Link,
    OpenAPIMediaType,
    Operation,
    Reference,
    RequestBody,
    SecurityScheme,
)
from litestar.static_files import create_static_files_router

from app.api.problems import PROBLEM_JSON, problem

SCHEMA_PATH = "/schema"
ASSETS_PATH = "/assets"  # under SCHEMA_PATH


def swagger_ui_assets() -> Path:
    """The directory of Swagger UI's built files inside the installed package (not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed; it is a runtime dependency of the API")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class OfflineSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI at `/schema`, loading its scripts, styles and icon from this service."""

    def __init__(self) -> None:
        assets = f"{SCHEMA_PATH}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path="/",
        )

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS_PATH, directories=[swagger_ui_assets()], name="swagger-ui-assets"
            )
        )


def _docs_not_found(response: Response[Any]) -> Response[Any]:
    """Litestar answers unknown `/schema/...` pages with an HTML 404; answer a problem like the API."""
    if response.status_code == 404 and response.media_type != PROBLEM_JSON:
        return problem(
            404, "no documentation page here; the docs are at /schema, the spec at /schema/openapi.json"
        )
    return response


def openapi_config(cache_ttl_seconds: float, not_found_ttl_seconds: float) -> OpenAPIConfig:
    """The document's configuration; the cache's TTLs are this instance's, so the text is true as served."""
    return OpenAPIConfig(
        title="Airline flights API",
        version="1.0.0",
        description=(
            "Flight events ingested through Pub/Sub and served from BigQuery. Errors are "
            "`application/problem+json` (RFC 9457): 4xx for the request, 503 with `Retry-After` "
            "when a backend is unavailable, 500 for our own faults.\n\n"
            f"Reads are cached by each instance: an answer for {cache_ttl_seconds:g} s, a 404 for "
            f"{not_found_ttl_seconds:g} s. So a published event reads back once the warehouse has it "
            f"and any cached 404 for its id has expired, and a correction once the cached copy "
            "(`Cache-Status`, `Age`) has; send `Cache-Control: no-cache` to read fresh."
        ),
        path=SCHEMA_PATH,
        components=Components(
            security_schemes={
                "GoogleIdToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="A Google-signed ID token (`gcloud auth print-identity-token`) of a "
                    "principal on the stack's publisher allow-list; its audience is the service URL. "
                    "Behind Cloud Run IAM send it in `X-Serverless-Authorization` as well: Cloud Run "
                    "checks that one and leaves this one to the service.",
                )
            }
        ),
        render_plugins=[OfflineSwaggerUI()],
        openapi_router=Router(
            SCHEMA_PATH, route_handlers=[], include_in_schema=False, after_request=_docs_not_found
        ),
    )


@dataclass(frozen=True)
class OperationDocs:
    """What Litestar cannot derive from a handler: examples, links, a request body it decodes itself."""

    links: Mapping[str, Mapping[str, Link]] | None = None  # status -> name -> link
    response_examples: Mapping[str, Mapping[str, Example]] | None = None  # status -> name -> example
    request_body: RequestBody | None = None


def documented(docs: OperationDocs) -> type[Operation]:
    """An Operation class for `operation_class=`, adding `docs` to what Litestar generated."""

    @dataclass
    class DocumentedOperation(Operation):
        # A dataclass again, so that the generated __init__ calls __post_init__.
        def __post_init__(self) -> None:
            if docs.request_body is not None:
                self.request_body = docs.request_body
            for status, links in (docs.links or {}).items():
                self._response(status).links = dict(links)
            for status, examples in (docs.response_examples or {}).items():
                response = self._response(status)
                for media_type in (response.content or {}).values():
                    media_type.examples = dict(examples)

        def _response(self, status: str) -> Any:
            response = (self.responses or {}).get(status)
            if response is None or isinstance(response, Reference):
                raise ValueError(f"operation {self.operation_id} documents no {status} response to extend")
            return response

    return DocumentedOperation


def json_body(schema: str, description: str, examples: Mapping[str, Example]) -> RequestBody:
    """A required JSON request body described by a component schema."""
    return RequestBody(
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{schema}"), examples=dict(examples)
            )
        },
        description=description,
        required=True,
    )
