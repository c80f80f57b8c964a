"""Every error is JSON {"error": {"code", "message"[, "details"]}}; nothing escapes as an HTML page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from gateway.services.access.api_keys import InvalidKey
from gateway.services.archive.files import ArchiveDamaged, ArchiveMissing
from gateway.services.dossiers.deliveries import UnknownStatusCode, Unprocessable
from gateway.services.errors import Conflict, NotFound, ServiceError
from gateway.services.notifications.messages import InvalidNotification

log = logging.getLogger(__name__)

SERVICE_STATUS: dict[type[ServiceError], int] = {NotFound: 404, Conflict: 409, Unprocessable: 422,
                                                 InvalidNotification: 422, UnknownStatusCode: 422,
                                                 InvalidKey: 422, ArchiveMissing: 503, ArchiveDamaged: 500}


def service_error_body(exc: ServiceError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        body["details"] = exc.details
    return body


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)]


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        return error_response(422, "validation_failed", "the request body is not valid", validation_details(exc))

    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        status = next((s for kind, s in SERVICE_STATUS.items() if isinstance(exc, kind)), 400)  # subclasses too
        return error_response(status, exc.code, exc.message, exc.details or None)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError) -> Response:
        # OperationalError: the server is down, restarting, or refused us; the transaction did not commit.
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            log.warning("database unavailable: %s", exc.orig)
            return error_response(503, "database_unavailable", "the database is unreachable; nothing was "
                                  "written, try again", headers={"Retry-After": "2"})
        log.exception("database error")
        return error_response(500, "internal_error", "an internal error occurred; nothing was half-written")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an internal error occurred; nothing was half-written")
