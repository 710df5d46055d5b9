"""Serve the API with uvicorn on $HOST:$PORT (127.0.0.1:8000 unless told otherwise)."""

import uvicorn

from app.api.settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        access_log=False,
    )


if __name__ == "__main__":
    main()
