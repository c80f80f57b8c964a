"""Notifications, their attempts and attachments."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, text, update

from .one_trip import AFTER, OneTrip, Part, json_value
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
    return of_dossiers(conn, [code])


def of_dossiers(conn: Connection, codes: list[str]) -> list[RowMapping]:
    return list(conn.execute(select(notifications).where(one_of(conn, notifications.c.dossier_code, codes))
                             .order_by(notifications.c.id)).mappings())


def intend_to_send(conn: Connection, notification_ids: list[int], *, now: datetime) -> None:
    """The send intent of a batch: these messages may reach their partner from now on, until their outcome."""
    if notification_ids:
        conn.execute(update(notifications).where(one_of(conn, notifications.c.id, notification_ids),
                                                 notifications.c.state == "queued").values(sending_since=now))


@dataclass(frozen=True)
class Told:
    """The outcome of one send, to record: the attempts made and how the notification moves on. A notification
    that left `expected_state` meanwhile (an operator, another worker) is left as it is."""

    notification_id: int
    expected_state: str
    tried: list[dict[str, Any]]  # provider, outcome, detail
    changes: dict[str, Any]  # state, provider, provider_message_id, sent_at, last_error: the same keys for each


def record_many(conn: Connection, outcomes: list[Told], *, now: datetime) -> None:
    """The outcomes of several sends (their attempts, the notifications moved on, their send intent cleared). On
    PostgreSQL one statement, atomic without a transaction around it (database.one_statement): an email's
    outcome, recorded alone before the next is sent, is one round trip."""
    if not outcomes:
        return
    tried = [{"notification_id": o.notification_id, "at": now, **a} for o in outcomes for a in o.tried]
    if conn.dialect.name == "postgresql":
        conn.execute(_RECORD, {
            "now": now, "tried": json.dumps(tried, default=json_value),
            "outcomes": json.dumps([{"id": o.notification_id, "expected": o.expected_state, **o.changes}
                                    for o in outcomes], default=json_value)})
        return
    if tried:
        conn.execute(insert(notification_attempts), tried)
    keys = sorted(outcomes[0].changes)
    conn.execute(update(notifications).where(notifications.c.id == bindparam("n_id"),
                                             notifications.c.state == bindparam("n_expected"))
                 .values(attempts=notifications.c.attempts + 1, updated_at=now, sending_since=None,
                         **{k: bindparam(f"n_{k}") for k in keys}),
                 [{"n_id": o.notification_id, "n_expected": o.expected_state,
                   **{f"n_{k}": o.changes[k] for k in keys}} for o in outcomes])


# Told.changes always carries these five (NotificationJobs._told keeps what does not change).
# No parameter of the statement is an array: with one (`id = ANY(:ids)`) PostgreSQL judged each call's own plan
# cheaper than the prepared generic plan and planned the statement at every call, which cost as much as running
# it (docs/performance.md, ninth round). The ids come out of the JSON in an InitPlan, unknown to custom and generic
# plans alike, so the generic plan is kept; it still finds the rows through notifications_pkey.
_RECORD = text("""
WITH tried AS (
    INSERT INTO notification_attempts (notification_id, at, provider, outcome, detail)
    SELECT r.notification_id, r.at, r.provider, r.outcome, r.detail
    FROM json_populate_recordset(NULL::notification_attempts, CAST(:tried AS json)) AS r)
UPDATE notifications AS n
SET attempts = n.attempts + 1, updated_at = :now, sending_since = NULL, state = r.state, provider = r.provider,
    provider_message_id = r.provider_message_id, sent_at = r.sent_at, last_error = r.last_error
FROM json_to_recordset(CAST(:outcomes AS json)) AS r(id bigint, expected text, state text, provider text,
                                                     provider_message_id text, sent_at timestamptz, last_error text)
WHERE n.id = ANY(ARRAY(SELECT CAST(v->>'id' AS bigint) FROM json_array_elements(CAST(:outcomes AS json)) AS v))
  AND n.id = r.id AND n.state = r.expected""")


def mark(conn: Connection, reference: str, *, now: datetime, expected_state: str, **changes: Any) -> bool:
    done = conn.execute(update(notifications).where(notifications.c.reference == reference,
                                                    notifications.c.state == expected_state)
                        .values(updated_at=now, **changes))
    return done.rowcount == 1
