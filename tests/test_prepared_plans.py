"""A hot statement keeps its prepared generic plan on PostgreSQL: planned a few times per connection, not at every
call. With an array parameter (`id = ANY(:ids)`), PostgreSQL judged each call's own plan cheaper than the generic
one and planned the citizen messages' outcomes, and every one-trip update (a payment settled, a delivery's status),
at every call: the outcomes' planning cost it as much as running them (docs/performance.md, ninth round)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from gateway.store import notifications as store
from gateway.store.one_trip import OneTrip
from gateway.store.tables import notification_attempts, notifications

AT = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
CALLS = 16  # psycopg prepares at the 6th; PostgreSQL plans the first 5 executions of a prepared statement apart


def _plans(conn, marker: str) -> tuple[int, int]:  # noqa: ANN001
    """(generic, custom) plans of the connection's prepared statement whose text holds `marker`."""
    return conn.exec_driver_sql("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                "WHERE strpos(statement, %(marker)s) > 0", {"marker": marker}).one()


def _notifications(engine: Engine, n: int) -> list[int]:
    """`n` queued notifications, in a table of some size with fresh statistics (on a handful of rows every plan is
    one scan, and custom and generic plans agree)."""
    with engine.begin() as conn:
        ids = conn.execute(insert(notifications).returning(notifications.c.id), [
            {"reference": f"TB{i:016d}", "channel": "sms", "recipient": "84912345678", "template": "received",
             "body": "Hồ sơ đã được tiếp nhận", "state": "queued", "attempts": 0, "origin": "step",
             "caller": "one-stop", "created_at": AT, "updated_at": AT} for i in range(n)]).scalars().all()
        conn.exec_driver_sql(
            "INSERT INTO notifications (reference, channel, recipient, template, body, state, attempts, origin, "
            "caller, created_at, updated_at) SELECT 'TS' || g, 'sms', '84912345678', 'received', 'Đã gửi', 'sent', "
            "1, 'step', 'one-stop', now(), now() FROM generate_series(1, 20000) AS g")
        conn.exec_driver_sql("ANALYZE notifications")
    return ids


def test_recording_outcomes_keeps_one_generic_plan(pg_engine):
    ids = _notifications(pg_engine, CALLS + 1)
    with pg_engine.connect() as conn:  # one connection: psycopg prepares per connection
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # as database.one_statement runs it
        for notification_id in ids[:-1]:
            store.record_many(conn, [store.Told(notification_id, "queued", [
                {"provider": "viettel", "outcome": "sent", "detail": None}], {
                "state": "sent", "provider": "viettel", "provider_message_id": f"VT{notification_id}", "sent_at": AT,
                "last_error": None})], now=AT)
        # A notification another worker moved on meanwhile is left as it is.
        store.record_many(conn, [store.Told(ids[-1], "sending", [], {
            "state": "sent", "provider": "viettel", "provider_message_id": "VTx", "sent_at": AT,
            "last_error": None})], now=AT)
        generic, custom = _plans(conn, "INSERT INTO notification_attempts")
        rows = conn.execute(select(notifications.c.id, notifications.c.state, notifications.c.attempts,
                                   notifications.c.provider_message_id).where(notifications.c.id.in_(ids))
                           .order_by(notifications.c.id)).all()
        tried = conn.execute(select(notification_attempts.c.notification_id)).scalars().all()
    assert custom <= 5 and generic >= CALLS - 10, (generic, custom)  # before: every execution a custom plan
    assert [(r.state, r.attempts, r.provider_message_id) for r in rows] == [
        ("sent", 1, f"VT{i}") for i in ids[:-1]] + [("queued", 0, None)]
    assert sorted(tried) == ids[:-1]


def test_a_one_trip_update_keeps_one_generic_plan(pg_engine):
    ids = _notifications(pg_engine, CALLS)
    with pg_engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for n, notification_id in enumerate(ids):
            trip = OneTrip()
            trip.update(notifications, [{"id": notification_id, "state": "sent", "attempts": n, "updated_at": AT},
                                        {"id": -1, "state": "sent", "attempts": n, "updated_at": AT}])  # no such row
            trip.run(conn)
        generic, custom = _plans(conn, "UPDATE notifications AS t")
        rows = conn.execute(select(notifications.c.id, notifications.c.state, notifications.c.attempts)
                            .where(notifications.c.id.in_(ids)).order_by(notifications.c.id)).all()
    assert custom <= 5 and generic >= CALLS - 10, (generic, custom)
    assert [(r.id, r.state, r.attempts) for r in rows] == [(i, "sent", n) for n, i in enumerate(ids)]
