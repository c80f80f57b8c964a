"""The gateway's PostgreSQL sessions read timestamps in UTC, whatever zone the server or the database is set to:
psycopg then hands back datetime.UTC values that nobody converts again (store/database.py), and every instant
reads back as written."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.store import audit
from gateway.store.database import make_engine
from gateway.store.tables import audit_log


def test_timestamps_read_in_utc_on_a_database_set_to_hanoi_time(pg_engine):
    with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{pg_engine.url.database}" SET TimeZone = \'Asia/Ho_Chi_Minh\''))
    engine = make_engine(pg_engine.url.render_as_string(hide_password=False))
    try:
        written = datetime(2026, 12, 7, 23, 30, 15, 123456, tzinfo=UTC)  # 06:30 on the 8th in Hà Nội
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT current_setting('TimeZone')")).scalar_one() == "UTC"
            audit.record(conn, actor="test", action="zone", subject="S-1", at=written)
            raw = conn.execute(sa.text("SELECT at FROM audit_log WHERE subject = 'S-1'")).scalar_one()
            read = conn.execute(sa.select(audit_log.c.at).where(audit_log.c.subject == "S-1")).scalar_one()
            text = conn.execute(sa.text("SELECT at::text FROM audit_log WHERE subject = 'S-1'")).scalar_one()
        assert raw == read == written
        assert raw.tzinfo is UTC and read.tzinfo is UTC  # psycopg's own UTC: no zone conversion on read
        assert text == "2026-12-07 23:30:15.123456+00"
        plain = sa.create_engine(pg_engine.url)  # a session not the gateway's: the database's zone
        with plain.connect() as other:
            assert other.execute(sa.text("SELECT at FROM audit_log")).scalar_one() == written
            assert other.execute(sa.text("SELECT current_setting('TimeZone')")).scalar_one() == "Asia/Ho_Chi_Minh"
        plain.dispose()
    finally:
        engine.dispose()
