"""Gunicorn settings for the agent's Prometheus metrics, added up across workers.

Each gunicorn worker is a process with counters of its own. prometheus_client's
multiprocess mode has every worker write them to files in ``PROMETHEUS_MULTIPROC_DIR``, and
any worker's ``metrics_path`` (or the master's ``metrics_port``) serves their sum. Use this
module as the config::

    gunicorn -c python:rasp.gunicorn -w 4 app:app

or, with a ``gunicorn.conf.py`` of your own, import it first (before anything that imports
prometheus_client)::

    from rasp.gunicorn import child_exit, on_exit, when_ready  # noqa: F401

and if you define one of these hooks yourself, call ours from it::

    import rasp.gunicorn

    def when_ready(server):
        rasp.gunicorn.when_ready(server)
        ...  # yours

Importing the module, in the master before the app and the workers, sets
``PROMETHEUS_MULTIPROC_DIR`` if it is not set (a fresh private temporary directory, removed
when gunicorn exits; set it yourself for a fixed place, which is created if missing), and
fails with a :class:`rasp.ConfigError` for an invalid ``RASP_*`` setting. The hooks, which
gunicorn runs in the master only:

* ``when_ready``: removes the ``*.db`` files a previous run left in that directory, and
  serves every worker's metrics on ``RASP_METRICS_PORT`` (at ``RASP_METRICS_ADDRESS``,
  127.0.0.1 by default) if it is set;
* ``child_exit``: tells prometheus_client a worker is gone (its live gauges leave the sum;
  its counters stay in it);
* ``on_exit``: removes the private directory.

A hook's error is logged to gunicorn's error log and never stops the server.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from rasp.config import Config, ConfigError

# Only the hooks: gunicorn takes every module global named like one of its settings.
__all__ = ["child_exit", "on_exit", "when_ready"]

_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LEGACY_DIR_ENV = "prometheus_multiproc_dir"  # prometheus_client still reads it, deprecated
_PRIVATE_PREFIX = "rasp-prometheus-"

_log = logging.getLogger(__name__)


class _Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...
    def exception(self, msg: str, *args: object) -> None: ...


class _Arbiter(Protocol):
    """The part of ``gunicorn.arbiter.Arbiter`` the hooks use."""

    @property
    def log(self) -> _Log: ...
    @property
    def master_pid(self) -> int:
        """The old master's pid in a master started by USR2 (an upgrade), else 0."""

    @property
    def reexec_pid(self) -> int:
        """The new master's pid while a USR2 upgrade runs, else 0."""


class _Worker(Protocol):
    @property
    def pid(self) -> int: ...


def when_ready(server: _Arbiter) -> None:
    """Master, before the first worker: clear stale files and serve ``metrics_port``."""
    try:
        _clear_stale_files(server)
    except Exception:
        server.log.exception("rasp: cannot clear %s; the metrics may count twice", _DIR_ENV)
    try:
        _serve_port(server)
    except Exception:
        server.log.exception("rasp: cannot serve the metrics port from the gunicorn master")


def child_exit(server: _Arbiter, worker: _Worker) -> None:
    """Master, after a worker exited: drop its live gauges from the sum."""
    try:
        from prometheus_client import multiprocess

        directory = _directory()
        if directory is not None:
            multiprocess.mark_process_dead(worker.pid, directory)  # type: ignore[no-untyped-call]
    except Exception:
        server.log.exception("rasp: cannot mark worker %s dead in the metrics", worker.pid)


def on_exit(server: _Arbiter) -> None:
    """Master, at shutdown (the workers have exited): remove the private directory."""
    # During a USR2 upgrade the new master and its workers may write there still.
    if _private_dir is None or server.reexec_pid:
        return
    try:
        shutil.rmtree(_private_dir)
    except FileNotFoundError:
        pass
    except Exception:
        server.log.exception("rasp: cannot remove %s", _private_dir)


def _directory() -> str | None:
    return os.environ.get(_DIR_ENV) or os.environ.get(_LEGACY_DIR_ENV) or None


def _clear_stale_files(server: _Arbiter) -> None:
    directory = _directory()
    # A master started by USR2 shares the directory with the old master's live workers.
    if directory is None or server.master_pid:
        return
    os.makedirs(directory, exist_ok=True)  # a gunicorn --env may have named another one
    # The master's own files are not stale: with --preload the app, imported here, may
    # have written some (the agent's info gauge) that the workers' sum relies on.
    own = f"_{os.getpid()}.db"
    stale = [path for path in Path(directory).glob("*.db") if not path.name.endswith(own)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        server.log.info("rasp: removed %d metric files of an earlier run from %s",
                        len(stale), directory)  # fmt: skip


def _serve_port(server: _Arbiter) -> None:
    # Read again: gunicorn's --env is applied after this module was imported.
    config = Config.load()
    if config.metrics_port is None:
        return
    from rasp.report import exposition

    if exposition.serve_port(config.metrics_port, config.metrics_address):
        server.log.info("rasp: metrics of all workers on http://%s:%d/metrics",
                        config.metrics_address, config.metrics_port)  # fmt: skip
    else:
        server.log.error(
            "rasp: cannot serve the metrics on %s:%d (RASP_METRICS_PORT): the port is busy "
            "or the address is not this host's", config.metrics_address, config.metrics_port,
        )  # fmt: skip


def _prepare() -> str | None:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers to inherit; the directory if this
    process created it. Runs once, when gunicorn imports its config in the master."""
    Config.load()  # an invalid RASP_* setting fails now, in the master, with its name
    directory = _directory()
    created = None
    if directory is None:
        directory = created = tempfile.mkdtemp(prefix=_PRIVATE_PREFIX)
        if "prometheus_client.values" in sys.modules:
            # prometheus_client chose in-memory values when first imported: the workers
            # inherit that choice, write no files, and the sum misses them.
            _log.warning(
                "rasp: prometheus_client was imported before rasp.gunicorn set %s; import "
                "rasp.gunicorn first in the gunicorn config, or set %s yourself",
                _DIR_ENV, _DIR_ENV,
            )  # fmt: skip
    else:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"{_DIR_ENV}={directory!r} is not valid: cannot create the directory: "
                f"{error.strerror}"
            ) from None
    os.environ[_DIR_ENV] = directory
    return created


_private_dir = _prepare()
