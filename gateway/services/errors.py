"""Failures a use case reports to its caller, whatever the entry point (HTTP, CLI)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"
