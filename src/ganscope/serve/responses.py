"""How every reply of the browser view's API is shaped: NaN-safe JSON and one-line errors.

Kept apart from the routes and the guard because both answer with the same ``{"error": ...}``
body, and the exception handlers turn every raised failure (a :class:`UserError`, a FastAPI
validation error, a 404/405 from routing) into that same one line for the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ganscope.errors import UserError
from ganscope.serve.common import dumps


class SafeJSON(JSONResponse):
    """JSON whose NaN/inf become null (a diverged run must not turn into a 500)."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


def error(status: int, message: str, headers: dict[str, str] | None = None) -> SafeJSON:
    """The one error shape the page understands: ``{"error": "<one line>"}``."""
    return SafeJSON({"error": message}, status_code=status, headers=headers)


async def _user_error(request: Request, exc: UserError) -> SafeJSON:
    return error(getattr(exc, "status", 400), str(exc))


async def _validation(request: Request, exc: RequestValidationError) -> SafeJSON:
    # Only the first problem, as one line: the page shows it as is.
    errs = exc.errors()
    if errs:
        e = errs[0]
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
        return error(422, f"bad request: {where}: {e.get('msg', 'invalid')}")
    return error(422, "bad request")


async def _http(request: Request, exc: StarletteHTTPException) -> SafeJSON:
    return error(exc.status_code, str(exc.detail))


# For FastAPI(exception_handlers=...): Starlette's own HTML/detail bodies never reach the page.
EXCEPTION_HANDLERS: dict[Any, Any] = {
    UserError: _user_error,
    RequestValidationError: _validation,
    StarletteHTTPException: _http,
}
