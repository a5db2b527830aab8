"""A runtime application self-protection agent for Python web apps.

Protect a WSGI or ASGI app in one line::

    app = rasp.wsgi(app)   # Flask, Django (WSGI), any WSGI app
    app = rasp.asgi(app)   # Starlette, FastAPI, Django (ASGI), any ASGI app

While a request is served, every SQL statement the app runs is checked: if a value from the
request changed the statement's structure, the statement does not run and the client gets
HTTP 403 (``block`` mode), or it runs and an alert is logged (``monitor`` mode).
"""

from __future__ import annotations

import threading
from typing import Any

from rasp.config import Config, ConfigError, Mode
from rasp.guard import AttackBlocked, Incident
from rasp.middleware.asgi import ASGIMiddleware
from rasp.middleware.wsgi import WSGIMiddleware

__all__ = [
    "ASGIMiddleware",
    "AttackBlocked",
    "Config",
    "ConfigError",
    "Incident",
    "Mode",
    "WSGIMiddleware",
    "__version__",
    "asgi",
    "protect",
    "unprotect",
    "wsgi",
]

__version__ = "0.1.0"

_lock = threading.Lock()
_protected = False


def protect(config: Config | None = None, **settings: Any) -> Config:
    """Install the guards (idempotent) with ``config``, or with settings read by
    :meth:`Config.load` (arguments, ``RASP_*`` environment, ``[tool.rasp]``).

    Raises :class:`ConfigError` for an invalid setting. Returns the active config.
    """
    global _protected
    from rasp import guard, sinks

    if config is not None and settings:
        raise ConfigError("pass either a Config or settings, not both")
    config = config if config is not None else Config.load(**settings)
    with _lock:
        guard.configure(config)
        if config.mode is Mode.OFF:
            sinks.uninstall()
        else:
            sinks.install()
        _protected = True
    guard.contained("report_setup", _report_setup, config)
    return config


def _report_setup(config: Config) -> None:
    from rasp import sinks
    from rasp.report import alerts, exposition, metrics

    alerts.configure(config.alert_window, config.alert_signatures, config.alert_format)
    families = ",".join(
        family.rsplit(".", 1)[1] for family in sinks.FAMILIES if family.startswith("rasp.sinks.")
    )
    metrics.agent_info(__version__, config.mode.value, families)
    metrics.mirror_to_otel(config.otel_metrics)
    if config.metrics_port is not None and not exposition.gunicorn_master():
        exposition.serve_port(config.metrics_port, config.metrics_address)


def unprotect() -> None:
    """Remove every guard and put the original functions back."""
    global _protected
    from rasp import guard, sinks

    with _lock:
        sinks.uninstall()
        guard.configure(Config(mode=Mode.OFF))
        _protected = False


def wsgi(app: Any, config: Config | None = None, **settings: Any) -> WSGIMiddleware:
    """Wrap a WSGI app; installs the guards if :func:`protect` was not called yet."""
    return WSGIMiddleware(app, config, **settings)


def asgi(app: Any, config: Config | None = None, **settings: Any) -> ASGIMiddleware:
    """Wrap an ASGI app; installs the guards if :func:`protect` was not called yet."""
    return ASGIMiddleware(app, config, **settings)


def _ensure_protected(config: Config | None, settings: dict[str, Any]) -> None:
    if config is not None or settings or not _protected:
        protect(config, **settings)
