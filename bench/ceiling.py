"""The read ceiling: a bare ASGI app that answers with precomputed responses, on the API's server.

For each read it is compared with, the harness captures the API's response (status, headers and
body) into a file, and this app answers the same bytes at `/<name>` without any framework, query
or serialisation. What it reaches is what the server (uvicorn with the service's options) and the
load generator can do on this machine at that moment: the most the API could do.

Run: `BENCH_CEILING_RESPONSES=DIR python -m bench.ceiling HOST PORT`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Headers the server adds itself, so they must not be repeated.
SERVER_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection"}


def save_response(directory: Path, name: str, status: int, headers: dict[str, str], body: bytes) -> None:
    """Store one captured response for the ceiling to answer at `/<name>`."""
    directory.mkdir(parents=True, exist_ok=True)
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in SERVER_HEADERS}
    (directory / f"{name}.json").write_text(json.dumps({"status": status, "headers": kept}))
    (directory / f"{name}.body").write_bytes(body)


def _load(directory: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    responses = {}
    for meta_file in directory.glob("*.json"):
        meta = json.loads(meta_file.read_text())
        body = meta_file.with_suffix(".body").read_bytes()
        headers = [(k.encode(), v.encode()) for k, v in meta["headers"].items()]
        headers.append((b"content-length", str(len(body)).encode()))
        start = {"type": "http.response.start", "status": meta["status"], "headers": headers}
        responses[f"/{meta_file.stem}"] = (start, {"type": "http.response.body", "body": body})
    return responses


def create_app() -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The ASGI app over the responses in $BENCH_CEILING_RESPONSES (read once, at start)."""
    responses = _load(Path(os.environ["BENCH_CEILING_RESPONSES"]))
    not_found = (
        {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]},
        {"type": "http.response.body", "body": b""},
    )

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        start, body = responses.get(scope["path"], not_found)
        # Fresh message dicts: a server or middleware may rewrite the headers of what it is sent.
        await send({**start})
        await send({**body})

    return app


if __name__ == "__main__":
    from app.api.__main__ import serve

    serve("bench.ceiling:create_app", sys.argv[1], int(sys.argv[2]))
