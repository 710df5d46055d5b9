"""Serve the API with uvicorn on $HOST:$PORT (127.0.0.1:8000 by default), logging JSON to stdout."""

import uvicorn

from app.api.settings import get_settings
from app.api.telemetry import configure_logging


def main() -> None:
    settings = get_settings()
    configure_logging(settings.project_id)
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        access_log=False,  # the app writes one structured access line per request
        log_config=None,  # keep the JSON logging configured above
    )


if __name__ == "__main__":
    main()
