"""The web console (docs/console.md): `console_app(settings)` is mounted at /console by the HTTP API."""

from casework.web.console.app import console_app

__all__ = ["console_app"]
