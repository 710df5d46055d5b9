"""Serve the API with uvicorn on $HOST:$PORT (127.0.0.1:8000 by default), logging JSON to stdout."""

from typing import Any

import uvicorn

from app.api.settings import get_settings
from app.api.telemetry import configure_logging

# How the service is served, in the image and locally, named explicitly so that a development
# environment that happens to have uvloop serves like the image. httptools parses HTTP in C (about
# 2x the requests per CPU of h11); uvloop would add ~1.3x for 14 MB of image, so the loop stays
# asyncio. bench/ serves its bare-ASGI ceiling with these same options (docs/performance.md).
SERVER_OPTIONS: dict[str, Any] = {
    "proxy_headers": True,
    "access_log": False,  # Cloud Run's request log has every request; the app logs no request twice
    "log_config": None,  # keep the JSON logging configure_logging set up
    "http": "httptools",
    "loop": "asyncio",
}


def serve(factory: str, host: str, port: int) -> None:
    """Run the ASGI app that `factory` ("module:function") builds, with the service's server options."""
    uvicorn.run(factory, factory=True, host=host, port=port, **SERVER_OPTIONS)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.project_id)
    serve("app.api.main:create_app", settings.host, settings.port)


if __name__ == "__main__":
    main()
