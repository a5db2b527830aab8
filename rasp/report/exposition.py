"""The agent's metrics served on a port of their own (``metrics_port``), by
prometheus_client's own HTTP server, in a daemon thread: once per process."""

from __future__ import annotations

import logging
import threading

__all__ = ["gunicorn_master", "serve_port"]

_log = logging.getLogger("rasp")
_lock = threading.Lock()
_served: tuple[str, int] | None = None


def serve_port(port: int, address: str) -> bool:
    """Serve the metrics on ``address:port`` unless this process does already; whether
    it serves them now. Under prometheus_client's multiprocess mode another process (the
    gunicorn master, see :mod:`rasp.gunicorn`, or a sibling worker) may hold the port and
    serves every process's metrics from it: then a busy port is expected."""
    global _served
    from prometheus_client import start_http_server

    from rasp.middleware._metrics import metrics_registry
    from rasp.report import metrics

    with _lock:
        if _served == (address, port):
            return True
        try:
            start_http_server(port, addr=address, registry=metrics_registry())
        except OSError as error:
            if metrics.multiprocess():
                _log.debug("rasp: metrics port %s:%d served by another process", address, port)
            else:
                _log.warning(
                    "rasp: cannot serve metrics on %s:%d (RASP_METRICS_PORT): %s",
                    address, port, error,
                )  # fmt: skip
            return False
        _served = (address, port)
        _log.info("rasp: metrics served on http://%s:%d/metrics", address, port)
        return True


def gunicorn_master() -> bool:
    """Is this process a gunicorn master starting up (``rasp run -- gunicorn ...``)? Its
    workers are forks that serve the requests; the port is served from the master by
    :mod:`rasp.gunicorn` (``-c python:rasp.gunicorn``), with every worker's metrics."""
    import sys

    # orig_argv: ``python -m gunicorn`` shows as ["-m", ...] in sys.argv at start-up.
    argv = [arg.replace("\\", "/") for arg in getattr(sys, "orig_argv", sys.argv)[:3]]
    if "-m" in argv and "gunicorn" in argv:
        return True
    return any(arg.endswith(("/gunicorn", "gunicorn/__main__.py")) or arg == "gunicorn"
               for arg in argv[:2])  # fmt: skip
