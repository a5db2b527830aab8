"""The registry the middleware serves at ``metrics_path``.

Under gunicorn (or ``uvicorn --workers``) each worker is its own process with its own
counters; with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client writes them to files and a
``MultiProcessCollector`` adds them up, so any worker answers for the whole server.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

__all__ = ["metrics_registry"]


def metrics_registry() -> CollectorRegistry:
    from rasp.report import metrics

    metrics.ensure()  # created on first use: a scrape before any request still shows them
    if metrics.multiprocess():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY
