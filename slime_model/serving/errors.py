"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}`` with the matching status.

Clients (the openai package, lmms-eval, VLMEvalKit, the project's teacher) branch on the status:
400 is the caller's mistake and is not retried, 401 stops a run, 503 and 5xx are retried.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A request the server refuses; becomes one JSON error response, never a crash."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.error_type = status, message, code, param, error_type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


def bad_request(message: str, code: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code, param)


async def api_error_response(request: Request, error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def not_found_response(request: Request, error: Exception) -> JSONResponse:
    return await api_error_response(
        request, ApiError(404, f"no route {request.method} {request.url.path}", "not_found")
    )


async def unexpected_error_response(request: Request, error: Exception) -> JSONResponse:
    """A bug must not leak a traceback to the client; it is logged by the app, answered as a 500."""
    return await api_error_response(
        request, ApiError(500, f"internal error: {type(error).__name__}", "internal_error", error_type="server_error")
    )
