"""The local endpoint's web app: MLflow's own scoring server behind two limits, run by uvicorn.

MLflow 3's scoring server is a FastAPI app (``mlflow.pyfunc.scoring_server.app:app``, which ``mlflow models
serve`` hands to uvicorn); it reads any request body whole, with no size limit, and echoes a malformed body back
in its 400. ``python -m uvicorn kerasjob.serving_app:app`` serves the same app wrapped in ``RequestLimits``, a
small ASGI middleware:

- a body over ``KERASJOB_MAX_BODY_BYTES`` (default 50 MB) is answered ``413`` at once, from its
  ``Content-Length`` or as it streams in, without echoing it; the server stays up;
- with ``KERASJOB_ENDPOINT_TOKEN`` set, every route but ``/ping`` and ``/health`` needs
  ``Authorization: Bearer <token>`` (compared in constant time), else ``401``. The token reaches the server
  through its environment, never its command line, and is never logged.

Importing this module loads the model (``__pyfunc_model_path__`` names it, as for MLflow's app).

Example:
    $ __pyfunc_model_path__=./model KERASJOB_ENDPOINT_TOKEN=s3cret python -m uvicorn kerasjob.serving_app:app
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any, Awaitable, Callable

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MAX_BODY_ENV", "OPEN_PATHS", "TOKEN_ENV", "RequestLimits", "app"]

DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024
MAX_BODY_ENV = "KERASJOB_MAX_BODY_BYTES"
TOKEN_ENV = "KERASJOB_ENDPOINT_TOKEN"
#: Health checks answer without a token: they say nothing about the model.
OPEN_PATHS = ("/ping", "/health")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """ASGI middleware: a body size limit (413) and an optional bearer token (401) in front of ``app``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, token: str | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.token = token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        if self.token and scope.get("path") not in OPEN_PATHS and not self._authorized(headers):
            await _answer(send, 401, "a bearer token is required: Authorization: Bearer <token>",
                          {"www-authenticate": "Bearer"})
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        chunks, size = [], 0
        while True:  # read the body here, up to the limit, then hand it on whole
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await _answer(send, 413, self._too_large())
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # a disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(),
                                                                  (self.token or "").encode())

    def _too_large(self) -> str:
        return f"the request body exceeds this endpoint's limit of {self.max_body_bytes} bytes"


async def _answer(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error_code": status, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(key.encode(), value.encode()) for key, value in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _limits_from_environment() -> tuple[int, str | None]:
    return int(os.environ.get(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES)), os.environ.get(TOKEN_ENV) or None


def __getattr__(name: str) -> Any:
    """``app``: MLflow's scoring app (loading the model) wrapped in ``RequestLimits``, made on first use."""
    if name != "app":
        raise AttributeError(name)
    from mlflow.pyfunc.scoring_server import app as mlflow_app

    max_body_bytes, token = _limits_from_environment()
    wrapped = RequestLimits(mlflow_app.app, max_body_bytes, token)
    globals()["app"] = wrapped
    return wrapped
