"""Audit records: written in the same transaction as the change they describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from .tables import audit_log


def record(conn: Connection, *, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None,
           at: datetime | None = None) -> None:
    conn.execute(insert(audit_log).values(
        at=at or datetime.now(UTC), actor=actor, action=action, subject=subject, detail=detail or {}
    ))


def record_many(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Several records (actor, action, subject, at, detail) in one statement."""
    if records:
        conn.execute(insert(audit_log), records)
