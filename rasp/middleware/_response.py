"""The answer a blocked request gets: 403, JSON by default, HTML for browsers."""

from __future__ import annotations

import html
import json

from rasp.guard import Incident

__all__ = ["blocked_response"]

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Request blocked</title></head>
<body><h1>Request blocked</h1>
<p>This request was blocked because it tried to change a {kind} the application runs.</p>
<p>If you think this is a mistake, give this incident id to the site's operators:
<code>{incident}</code></p></body></html>
"""


def blocked_response(incident: Incident, accept: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of the 403 answer for ``incident``."""
    kind = incident.kind.value.replace("_", " ")
    if _prefers_html(accept):
        body = _HTML.format(kind=html.escape(_target(kind)), incident=html.escape(incident.id))
        content_type = "text/html; charset=utf-8"
        payload = body.encode()
    else:
        document = {
            "error": "request_blocked",
            "message": f"Blocked by the application's security agent: {kind}.",
            "incident_id": incident.id,
        }
        content_type = "application/json"
        payload = json.dumps(document).encode()
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(payload))),
        ("Cache-Control", "no-store"),
        ("X-Rasp-Incident", incident.id),
    ]
    return "403 Forbidden", headers, payload


def _target(kind: str) -> str:
    return {"sql injection": "database query", "shell injection": "shell command"}.get(
        kind, "file path or address"
    )


def _prefers_html(accept: str) -> bool:
    # Browsers send text/html first; API clients send */* or application/json.
    accept = accept.lower()
    if "text/html" not in accept:
        return False
    return "application/json" not in accept or accept.find("text/html") < accept.find(
        "application/json"
    )
