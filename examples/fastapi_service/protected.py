"""The same service with the agent added in code: ``uvicorn protected:app``.

``rasp.ASGIMiddleware`` starts the agent (``rasp.protect()``) when the app starts, before
the lifespan opens any connection. Under ``rasp run`` as well, each request is still
checked and counted once: the outer entry point sets the request context and this
middleware passes the request through.
"""

from __future__ import annotations

from app import app

import rasp

app.add_middleware(rasp.ASGIMiddleware)

__all__ = ["app"]
