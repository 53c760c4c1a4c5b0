"""`python -m core`: serve the integration core with uvicorn (default 127.0.0.1:8100; see CoreSettings)."""

from __future__ import annotations

from core.settings import CoreSettings


def serve_core(settings: CoreSettings | None = None) -> None:
    """Run the core in this process until interrupted (launches and destroys its own runtime)."""
    import uvicorn

    from core.api import create_core_app

    settings = settings or CoreSettings()
    uvicorn.run(create_core_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    serve_core()
