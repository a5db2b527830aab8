"""Flask, the usual way: ``Rasp(app)`` or ``rasp_ext.init_app(app)`` in an app factory.

Settings come from ``app.config["RASP"]`` (a dict of the agent's settings, e.g.
``{"mode": "monitor"}``), then the ``RASP_*`` environment and ``[tool.rasp]``; an invalid one
raises :class:`rasp.ConfigError` when the app is set up. Route templates (``/items/<id>``)
label the metrics and the view's arguments are inputs of their own (``path.<name>``).
``rasp.protect()`` alone (or ``rasp run``) protects a Flask app too; the extension makes it
explicit and reads the settings from the app's config. There is one agent per process: the
settings of the last app set up apply to every app in it. It never wraps an app twice.
"""

from __future__ import annotations

from typing import Any

from rasp.config import Config
from rasp.middleware.wsgi import WSGIMiddleware

__all__ = ["Rasp"]


class Rasp:
    def __init__(self, app: Any = None, **settings: Any) -> None:
        self.settings = settings
        self.config: Config | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        import rasp

        settings = {**dict(app.config.get("RASP") or {}), **self.settings}
        self.config = rasp.protect(**settings)
        if not isinstance(app.wsgi_app, WSGIMiddleware):
            app.wsgi_app = WSGIMiddleware(app.wsgi_app, self.config)
        app.extensions["rasp"] = self
