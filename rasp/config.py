"""One configuration, from arguments, ``RASP_*`` environment variables and ``[tool.rasp]``.

Precedence, highest first: keyword arguments, environment, the nearest ``pyproject.toml``
(searched from the working directory upwards), defaults. A bad value fails at start-up with
a :class:`ConfigError` that names the setting, where it came from, and what is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Config", "ConfigError", "Mode"]

ENV_PREFIX = "RASP_"
_SIZE = re.compile(r"\s*(\d+)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the setting and its source."""


class Mode(str, enum.Enum):
    BLOCK = "block"
    """Stop the call and answer 403."""
    MONITOR = "monitor"
    """Let the call run and raise an alert."""
    OFF = "off"
    """Check nothing."""


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """The agent's settings. Build it with :meth:`Config.load` to read env and pyproject."""

    mode: Mode = Mode.BLOCK
    body_limit: int = 1024 * 1024
    """Bytes of request body kept for scanning; a larger body is not scanned (and counted)."""
    max_inputs: int = 1_000_000
    """User inputs kept per request; the rest are not scanned (and counted). The default is
    above what the default body limit can hold, so that limit binds first: inputs dropped
    here are inputs an attacker could hide a payload behind."""
    fail_closed: bool = False
    """When the agent itself fails during a check: False lets the call run, True blocks it."""
    metrics_path: str | None = None
    """Serve Prometheus metrics at this path from the middleware (None: do not serve)."""
    ssrf_allow: tuple[str, ...] = ()
    """Hosts (``api.internal``, ``.corp.example`` for a whole domain) and networks
    (``10.1.0.0/16``, ``169.254.169.254``) that outbound requests may reach even when the
    host came from user input, and cloud metadata addresses that may be reached at all."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port from a thread of prometheus_client's own
    (None: do not). Under gunicorn, :mod:`rasp.gunicorn` serves it from the master."""
    metrics_address: str = "127.0.0.1"
    """The address ``metrics_port`` listens on; ``0.0.0.0`` to be scraped from elsewhere."""
    alert_window: float = 60.0
    """Seconds during which repeats of one attack (same kind, sink, route, code site and
    input) are counted, not logged; then one summary. 0 logs every attack."""
    alert_signatures: int = 10_000
    """Distinct attacks remembered for that (least recently seen forgotten first)."""
    alert_format: str = "json"
    """How the agent writes alerts to stderr (``json`` lines or ``text``) when the app's
    logging has no handler for the ``rasp.alerts`` logger; when it has one, records go
    there, formatted by the app (``rasp.report.JsonFormatter`` is provided)."""
    redact_keys: tuple[str, ...] = (
        "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key",
        "access_key", "private_key", "authorization", "cookie", "session", "sessid", "csrf",
        "xsrf", "credential", "ssn", "card_number", "cardnumber", "cvv",
    )  # fmt: skip
    """Inputs whose key (``body.password``, ``header.authorization``, ``cookie.sessionid``)
    names a secret by one of these (case-insensitive, at a word boundary: ``sessionid`` and
    ``csrftoken`` do, ``classname`` does not) are shown as ``[redacted]`` in alerts and
    traces, their value hidden in the statement and path too."""
    redact_values: tuple[str, ...] = (
        r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*",  # a JSON web token
        r"(?i)\b(?:bearer|basic)\s+[\w.~+/=-]{8,}",  # an Authorization header's credential
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # an AWS access key id
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r"(?i)\b(?:password|passwd|pwd|secret|token|api_?key)=[^&\s;]+",  # key=value pairs
    )
    """Regular expressions whose matches are replaced by ``[redacted]`` in the evidence
    (input, statement, path) of alerts and trace events."""
    otel_metrics: bool = False
    """Mirror the agent's counters and histograms through the OpenTelemetry metrics API."""
    origins: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
    """Where each setting came from: ``default``, ``argument``, ``env RASP_MODE``, a file."""

    def __post_init__(self) -> None:
        # Config(mode="monitor") built by hand must mean what Config.load(mode="monitor")
        # means: the guard compares modes by identity, so a plain string would break it.
        for key in _PARSERS:
            value = _parse(key, getattr(self, key), f"Config({key})")
            object.__setattr__(self, key, value)

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        pyproject: Path | str | None = None,
        **arguments: Any,
    ) -> Config:
        environ = os.environ if environ is None else environ
        unknown = set(arguments) - set(_PARSERS)
        if unknown:
            raise ConfigError(
                f"unknown setting {sorted(unknown)[0]!r}; known settings: {', '.join(_PARSERS)}"
            )
        values: dict[str, Any] = {}
        origins: dict[str, str] = dict.fromkeys(_PARSERS, "default")
        table, path = _pyproject_table(Path(pyproject) if pyproject else None)
        for name, raw in table.items():
            key = name.replace("-", "_")
            if key not in _PARSERS:
                raise ConfigError(
                    f"[tool.rasp] in {path}: unknown setting {name!r}; "
                    f"known settings: {', '.join(_PARSERS)}"
                )
            values[key] = _parse(key, raw, f"[tool.rasp] {name} in {path}")
            origins[key] = str(path)
        for key in _PARSERS:
            env_name = ENV_PREFIX + key.upper()
            if env_name in environ:
                values[key] = _parse(key, environ[env_name], env_name)
                origins[key] = f"env {env_name}"
        for key, raw in arguments.items():
            if raw is None and key not in _NULLABLE:
                continue
            values[key] = _parse(key, raw, f"argument {key}")
            origins[key] = "argument"
        return cls(**values, origins=origins)


def _parse(key: str, raw: object, where: str) -> Any:
    try:
        return _PARSERS[key](raw)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}={raw!r} is not valid: {error}") from None


def _mode(raw: object) -> Mode:
    if isinstance(raw, Mode):
        return raw
    text = str(raw).strip().lower()
    try:
        return Mode(text)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(m.value for m in Mode)}") from None


def _size(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a size in bytes such as 1048576 or 1MiB")
    if isinstance(raw, int):
        number = raw
    else:
        match = _SIZE.fullmatch(str(raw))
        if match is None:
            raise ValueError("expected a size in bytes such as 1048576 or 1MiB")
        unit = match.group(2).lower() if match.group(2) else None
        number = int(match.group(1)) * _SIZE_UNITS[unit]
    if number < 0:
        raise ValueError("expected a size of 0 or more bytes")
    return number


def _count(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number of 1 or more")
    try:
        number = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ValueError("expected a whole number of 1 or more") from None
    if number < 1:
        raise ValueError("expected a whole number of 1 or more")
    return number


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false (also 1/0, yes/no, on/off)")


def _path(raw: object) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if text in ("", "off", "none"):
        return None
    if not text.startswith("/"):
        raise ValueError("expected a URL path starting with '/', or 'off'")
    return text


def _destinations(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        entries = raw.replace(",", " ").split()
    elif isinstance(raw, (list, tuple, set, frozenset)):
        entries = [str(entry).strip() for entry in raw]
    else:
        raise ValueError("expected hosts and networks, comma-separated or as a list")
    found: list[str] = []
    for entry in entries:
        try:
            found.append(str(ipaddress.ip_network(entry, strict=False)))
            continue
        except ValueError:
            pass
        host = entry.lower().rstrip(".")
        if not _HOST.fullmatch(host):
            raise ValueError(
                f"{entry!r} is neither a host name (api.internal, .corp.example) "
                "nor a network (10.0.0.0/8, 169.254.169.254)"
            )
        found.append(host)
    return tuple(dict.fromkeys(found))


def _port(raw: object) -> int | None:
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text in ("", "off", "none"):
        return None
    if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("expected a TCP port from 1 to 65535, or 'off'")
    return int(text)


def _address(raw: object) -> str:
    text = str(raw).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(
            "expected an IP address to listen on, such as 127.0.0.1 or 0.0.0.0"
        ) from None


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", re.IGNORECASE)
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a duration such as 60, 60s, 5m or 0")
    if isinstance(raw, (int, float)):
        number = float(raw)
    else:
        match = _DURATION.fullmatch(str(raw))
        if match is None:
            raise ValueError("expected a duration such as 60, 60s, 5m or 0")
        unit = match.group(2).lower() if match.group(2) else None
        number = float(match.group(1)) * _DURATION_UNITS[unit]
    if not 0 <= number < 1e9:
        raise ValueError("expected a duration of 0 seconds or more")
    return number


def _choice(*allowed: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        text = str(raw).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _words(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        entries = raw.replace(",", " ").split()
    elif isinstance(raw, (list, tuple, set, frozenset)):
        entries = [str(entry).strip() for entry in raw if str(entry).strip()]
    else:
        raise ValueError("expected words, comma-separated or as a list")
    return tuple(dict.fromkeys(entry.lower() for entry in entries))


def _patterns(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        # One per line or separated by ";;" in an environment variable (commas and
        # spaces belong to regular expressions).
        entries = [entry.strip() for entry in re.split(r"\n|;;", raw)]
    elif isinstance(raw, (list, tuple, set, frozenset)):
        entries = [str(entry) for entry in raw]
    else:
        raise ValueError("expected regular expressions, as a list or separated by ';;'")
    found = [entry for entry in entries if entry]
    for entry in found:
        try:
            re.compile(entry)
        except re.error as error:
            raise ValueError(f"{entry!r} is not a regular expression: {error}") from None
    return tuple(found)


_HOST = re.compile(r"\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")

_PARSERS: dict[str, Callable[[object], Any]] = {
    "mode": _mode,
    "body_limit": _size,
    "max_inputs": _count,
    "fail_closed": _flag,
    "metrics_path": _path,
    "ssrf_allow": _destinations,
    "metrics_port": _port,
    "metrics_address": _address,
    "alert_window": _seconds,
    "alert_signatures": _count,
    "alert_format": _choice("json", "text"),
    "redact_keys": _words,
    "redact_values": _patterns,
    "otel_metrics": _flag,
}
_NULLABLE = frozenset({"metrics_path", "metrics_port"})


def _pyproject_table(explicit: Path | None) -> tuple[dict[str, Any], Path | None]:
    path = explicit if explicit is not None else _find_pyproject(Path.cwd())
    if path is None or not path.is_file():
        return {}, None
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read [tool.rasp] from {path}: {error}") from None
    table = document.get("tool", {}).get("rasp", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.rasp] in {path} must be a table")
    return table, path


def _find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None
