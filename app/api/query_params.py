"""Query strings are strict: each parameter a route declares, at most once, under its public name.

A typo (`form=`) or a repeated value (`limit=1&limit=500`) would otherwise be ignored or
resolved silently, and the client would get an answer to a question it did not ask.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar import Request
from litestar.enums import ParamType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg


@cache
def _query_names(handler: HTTPRouteHandler) -> dict[str, str]:
    """Python name -> public name of every query parameter the handler declares."""
    names = {}
    dependencies = handler.resolve_dependencies()
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if (
            isinstance(kwarg, ParameterKwarg)
            and kwarg.param_type is ParamType.QUERY
            and name not in dependencies
        ):
            names[name] = kwarg.name or kwarg.query or name
    return names


def public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client uses for the parameter Litestar reports as `key`."""
    handler = request.scope.get("route_handler")
    if isinstance(handler, HTTPRouteHandler):
        return _query_names(handler).get(key, key)
    return key


async def reject_unknown_or_repeated(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook: 400 for a query parameter the route does not take, or one given twice.

    Async on purpose: Litestar runs a sync hook in a worker thread, a hop on every request.
    """
    allowed = set(_query_names(request.route_handler).values())
    errors = []
    for key in dict.fromkeys(request.query_params.keys()):
        if key not in allowed:
            errors.append({"key": key, "source": "query", "message": "unknown query parameter"})
        elif len(request.query_params.getall(key)) > 1:
            errors.append({"key": key, "source": "query", "message": "given more than once"})
    if errors:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ValidationException(
            "; ".join(f"`{e['key']}`: {e['message']}" for e in errors) + f" (accepted: {accepted})",
            extra=errors,
        )
