"""Every error the server answers with, as one JSON shape::

    {"error": {"type": "workflow_not_found", "message": "...", "details": {...}}}

Routes raise :class:`ApiError` for what they decide themselves; the SDK's errors
(:mod:`ruvon.errors`) that reach the app are mapped by :func:`sdk_error`, one rule per error
class. A failing *step* is not an error of the request (see :mod:`ruvon_server.driving`).
Anything else is a bug: 500 ``internal_error``, logged with its traceback, never a stack trace
to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ruvon.errors import (
    ConcurrencyConflictError,
    DefinitionError,
    DuplicateIdempotencyKeyError,
    IdempotencyConflictError,
    InvalidInputError,
    JumpTargetError,
    PersistenceError,
    RuvonError,
    StateValidationError,
    StoredStateError,
    UnknownWorkflowTypeError,
    WorkflowLeasedError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from ruvon.serialization import jsonable
from ruvon_server.schemas.common import ErrorBody, ErrorResponse

__all__ = ["ERROR_RESPONSES", "ApiError", "install_error_handlers", "sdk_error"]

logger = logging.getLogger("ruvon_server")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad request (unknown type, malformed id)"},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "Not found"},
    409: {"model": ErrorResponse, "description": "Conflict with the run's status or a writer"},
    422: {"model": ErrorResponse, "description": "Invalid body, query or input"},
    503: {"model": ErrorResponse, "description": "The database cannot be reached"},
}
"""The error responses every API route documents (``/openapi.json``)."""

_BODY_PARSE_FAILURE = "There was an error parsing the body"
"""FastAPI's detail for a JSON body it could not decode (bad encoding, nesting too deep)."""


class ApiError(Exception):
    """An error response: HTTP status, a stable ``type``, a message saying what is wrong."""

    def __init__(
        self, status: int, type: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details

    def response(self) -> JSONResponse:
        body = ErrorResponse(error=ErrorBody(type=self.type, message=self.message))
        content = body.model_dump(exclude_none=True)
        if self.details is not None:
            content["error"]["details"] = jsonable(self.details)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(content, status_code=self.status, headers=headers)


def not_found(workflow_id: str) -> ApiError:
    return ApiError(404, "workflow_not_found", f"Workflow '{workflow_id}' not found.")


def sdk_error(exc: RuvonError) -> ApiError | None:
    """The response for an SDK error raised by a request (None: not the client's doing, a
    500). The order matters: subclasses first."""
    if isinstance(exc, WorkflowNotFoundError):
        return not_found(exc.workflow_id)
    if isinstance(exc, InvalidInputError):
        return ApiError(422, "invalid_input", str(exc), {"step": exc.step_name})
    if isinstance(exc, StateValidationError):
        kind = "invalid_initial_data" if exc.step_name is None else "invalid_state"
        return ApiError(422, kind, str(exc), {"errors": exc.errors})
    if isinstance(exc, UnknownWorkflowTypeError):
        return ApiError(
            400, "unknown_workflow_type", str(exc), {"workflow_type": exc.workflow_type}
        )
    if isinstance(exc, JumpTargetError):
        return ApiError(400, "unknown_step", str(exc), {"step": exc.target})
    if isinstance(exc, IdempotencyConflictError):
        held = {"idempotency_key": exc.idempotency_key, "workflow_id": exc.workflow_id}
        return ApiError(409, "idempotency_conflict", str(exc), held)
    if isinstance(exc, WorkflowLeasedError):
        return ApiError(409, "workflow_busy", str(exc), {"workflow_id": exc.workflow_id})
    if isinstance(exc, ConcurrencyConflictError):
        return ApiError(409, "concurrency_conflict", str(exc), {"workflow_id": exc.workflow_id})
    if isinstance(exc, DuplicateIdempotencyKeyError):
        return ApiError(409, "idempotency_conflict", str(exc))
    if isinstance(exc, WorkflowStateError):
        return ApiError(409, "wrong_status", str(exc))
    if isinstance(exc, StoredStateError):
        stored: dict[str, Any] = {"workflow_id": exc.workflow_id, "errors": exc.errors}
        return ApiError(409, "stored_state_invalid", str(exc), stored)
    if isinstance(exc, DefinitionError):
        issues = [str(issue) for issue in exc.issues]
        return ApiError(409, "definition_error", str(exc), {"issues": issues})
    if isinstance(exc, PersistenceError):
        return ApiError(503, "database_unavailable", f"Database error: {exc}")
    return None


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _ruvon_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RuvonError)
    mapped = sdk_error(exc)
    if mapped is None:
        return await _internal(request, exc)
    if mapped.status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc)
    return mapped.response()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        message = "The request body is not valid JSON."
        kind = "invalid_json"
    else:
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['message']}" for e in errors[:10])
        message = f"Invalid request: {where}"
        kind = "invalid_request"
    return ApiError(422, kind, message, {"errors": errors}).response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILURE:
        return ApiError(422, "invalid_json", "The request body is not valid JSON.").response()
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    kind = kinds.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"No such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return ApiError(exc.status_code, kind, message).response()


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    logger.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "The server failed to handle the request; the error is in the server's log."
    return ApiError(500, "internal_error", message).response()


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response the one JSON shape (see the module)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RuvonError, _ruvon_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)
