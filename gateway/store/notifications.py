"""Notifications, their attempts and attachments."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from .one_trip import AFTER, OneTrip, Part
from .sql_forms import one_of
from .tables import notification_attachments, notification_attempts, notifications


def add_told(trip: OneTrip, rows: list[dict[str, Any]], files: dict[str, list[dict[str, Any]]]) -> Part:
    """Notifications (with their attachments, by reference) into a one-trip write; one whose source_key was
    told already is skipped, with its attachments. The part answers the (id, reference) of those written."""
    told = trip.insert(notifications, rows, returning=("id", "reference"), unique=("source_key",))
    trip.insert(notification_attachments, [
        {AFTER: reference, "sha256": hashlib.sha256(f["content"]).hexdigest(), "size": len(f["content"]), **f}
        for reference, attached in files.items() for f in attached],
        after=told, match="reference", fill={"notification_id": "id"})
    return told


def attachments_of_dossier(conn: Connection, code: str) -> list[RowMapping]:
    """Every attachment of the notifications about a dossier, with its notification's reference and state."""
    return list(conn.execute(
        select(notification_attachments, notifications.c.reference, notifications.c.state)
        .join(notifications, notifications.c.id == notification_attachments.c.notification_id)
        .where(notifications.c.dossier_code == code)
        .order_by(notification_attachments.c.notification_id, notification_attachments.c.id)).mappings())


def drop_body(conn: Connection, attachment_id: int, *, sha256: str, size: int, archive_path: str,
              now: datetime) -> None:
    """Data minimisation: the content goes (the archive package keeps it); what it was and where it is stay."""
    conn.execute(update(notification_attachments).where(notification_attachments.c.id == attachment_id).values(
        content=b"", sha256=sha256, size=size, archive_path=archive_path, dropped_at=now))


def attachments(conn: Connection, notification_id: int) -> list[RowMapping]:
    return list(conn.execute(select(notification_attachments).where(
        notification_attachments.c.notification_id == notification_id).order_by(notification_attachments.c.id)
    ).mappings())


def by_references(conn: Connection, references: list[str]) -> list[RowMapping]:
    if not references:
        return []
    return list(conn.execute(select(notifications).where(
        one_of(conn, notifications.c.reference, references))).mappings())


def attachments_of(conn: Connection, notification_ids: list[int]) -> dict[int, list[RowMapping]]:
    """The attachments of several notifications, by notification id (none: not in the answer)."""
    found: dict[int, list[RowMapping]] = {}
    if notification_ids:
        for row in conn.execute(select(notification_attachments).where(
                one_of(conn, notification_attachments.c.notification_id, notification_ids))
                .order_by(notification_attachments.c.id)).mappings():
            found.setdefault(row["notification_id"], []).append(row)
    return found


def by_reference(conn: Connection, reference: str) -> RowMapping | None:
    return conn.execute(select(notifications).where(notifications.c.reference == reference)).mappings().first()


def attempts(conn: Connection, notification_id: int) -> list[RowMapping]:
    return list(conn.execute(select(notification_attempts).where(
        notification_attempts.c.notification_id == notification_id).order_by(notification_attempts.c.id)).mappings())


def of_dossier(conn: Connection, code: str) -> list[RowMapping]:
    return list(conn.execute(select(notifications).where(notifications.c.dossier_code == code)
                             .order_by(notifications.c.id)).mappings())


def record(conn: Connection, notification_id: int, tried: list[dict[str, Any]], *, now: datetime,
           expected_state: str, **changes: Any) -> bool:
    """Add the attempts of one send and move the notification on, unless it left `expected_state` meanwhile."""
    if tried:
        rows = [{"notification_id": notification_id, "at": now, **attempt} for attempt in tried]
        conn.execute(insert(notification_attempts), rows)
    done = conn.execute(update(notifications).where(notifications.c.id == notification_id,
                                                    notifications.c.state == expected_state)
                        .values(attempts=notifications.c.attempts + 1, updated_at=now, **changes))
    return done.rowcount == 1


def mark(conn: Connection, reference: str, *, now: datetime, expected_state: str, **changes: Any) -> bool:
    done = conn.execute(update(notifications).where(notifications.c.reference == reference,
                                                    notifications.c.state == expected_state)
                        .values(updated_at=now, **changes))
    return done.rowcount == 1
