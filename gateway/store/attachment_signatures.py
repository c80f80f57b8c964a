"""The verdict on each PDF attachment of a dossier."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, select
from sqlalchemy.exc import IntegrityError

from .sql_forms import one_of
from .tables import attachment_signatures


def add(conn: Connection, values: dict[str, Any]) -> bool:
    """Store a verdict; False if this attachment already has one (a repeated job changes nothing)."""
    exists = select(attachment_signatures.c.id).where(
        attachment_signatures.c.dossier_id == values["dossier_id"],
        attachment_signatures.c.attachment_id == values["attachment_id"])
    if conn.execute(exists).first() is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(attachment_signatures.insert().values(**values))
    except IntegrityError:  # a second worker got there first
        return False
    return True


def of_dossier(conn: Connection, dossier_id: int) -> list[RowMapping]:
    return of_dossiers(conn, [dossier_id])


def of_dossiers(conn: Connection, dossier_ids: list[int]) -> list[RowMapping]:
    query = (select(attachment_signatures).where(one_of(conn, attachment_signatures.c.dossier_id, dossier_ids))
             .order_by(attachment_signatures.c.id))
    return list(conn.execute(query).mappings())
