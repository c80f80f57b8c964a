"""API keys kept in the database (as SHA-256 hashes), besides those in the settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from .tables import api_keys


def by_hash(conn: Connection, digest: str) -> RowMapping | None:
    return conn.execute(select(api_keys).where(api_keys.c.key_sha256 == digest,
                                               api_keys.c.revoked_at.is_(None))).mappings().first()


def by_name(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(api_keys).where(api_keys.c.name == name)).mappings().first()


def add(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(api_keys).values(**values))


def revoke(conn: Connection, name: str, at: datetime) -> bool:
    return conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                        .values(revoked_at=at)).rowcount == 1


def all_keys(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings())
