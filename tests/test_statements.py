"""What a request costs the database, counted: statements and commits of a step request and of a filing.

A step request writes its steps, the dossiers' progress, the national portal's jobs, its audit records and the
citizens' notifications. On PostgreSQL all of that is one statement (store/one_trip.py) after two that lock
and read: at most 4 statements and 1 commit whatever the batch's size (issue 24's target). On SQLite, which
has no INSERT inside WITH and no round trip to save, it is a statement per table written; there too one
commit, and a batch of fifty costs the statements of one step. A worker's drain commits once per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event, select

from gateway.adapters import national_portal as np
from gateway.store import portal_drift, tables
from gateway.store.database import COMMITS_ITSELF
from tests.conftest import dossier_body

ONE_STOP = {"Authorization": "Bearer dev-one-stop-key"}


@dataclass
class Sent:
    statements: list[str] = field(default_factory=list)
    commits: int = 0


@contextmanager
def counted(engine) -> Iterator[Sent]:  # noqa: ANN001
    sent = Sent()

    def statement(_conn, _cursor, sql, _params, context, _many) -> None:  # noqa: ANN001
        sent.statements.append(" ".join(sql.split()[:4]))
        if context.execution_options.get(COMMITS_ITSELF):  # a statement without a transaction: its own commit
            sent.commits += 1

    def commit(_conn) -> None:  # noqa: ANN001
        sent.commits += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def _filed(gw, n: int) -> list[str]:  # noqa: ANN001
    return [gw.file(dossier_body())["code"] for _ in range(n)]


def _batch(gw, codes: list[str], status: int, tag: str):  # noqa: ANN001, ANN202
    return gw.client.post("/api/v1/one-stop/events", headers=ONE_STOP, json={"events": [
        {"code": code, "status": status, "event_id": f"{tag}-{code}", "note": f"{tag} {code}"} for code in codes]})


def test_a_step_request_costs_a_few_statements_and_one_commit_whatever_its_size(gw) -> None:  # noqa: ANN001
    engine = gw.gateway.engine
    one, fifty = _filed(gw, 1), _filed(gw, 50)
    for codes, tag in ((one, "warm"), (fifty, "warm")):  # accepted (2): every later step of the same kind
        assert _batch(gw, codes, 2, tag).get_json()["accepted"] == len(codes)

    with counted(engine) as single:
        r = gw.client.post(f"/api/v1/dossiers/{one[0]}/events", headers=ONE_STOP,
                           json={"status": 4, "event_id": "single", "note": "one step"})
    assert r.status_code == 201, r.get_json()
    with counted(engine) as batch:
        r = _batch(gw, fifty, 4, "batch")
    assert r.get_json()["accepted"] == 50
    assert single.commits == batch.commits == 1
    assert len(batch.statements) == len(single.statements), (single.statements, batch.statements)
    if engine.dialect.name == "postgresql":
        assert len(single.statements) <= 4, single.statements
    with engine.connect() as conn:  # and what the one statement wrote is all there: 51 steps, jobs, audit
        from sqlalchemy import func, select

        from gateway.store.tables import audit_log, dossier_events, jobs

        codes = [*one, *fifty]
        steps = conn.execute(select(func.count()).select_from(dossier_events).where(dossier_events.c.status == 4,
                             dossier_events.c.event_id.in_(["single", *(f"batch-{c}" for c in fifty)]))).scalar_one()
        progress = conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.ordering_key.in_(codes), jobs.c.kind == np.PROGRESS)).scalar_one()
        audited = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.subject.in_(codes), audit_log.c.action == "dossier.step")).scalar_one()
    assert (steps, progress, audited) == (51, 102, 102)


def test_a_filing_costs_three_statements_and_one_commit(gw) -> None:  # noqa: ANN001
    engine = gw.gateway.engine
    _filed(gw, 1)  # warm
    with counted(engine) as filing:
        code = gw.file(dossier_body())["code"]
    assert filing.commits == 1
    if engine.dialect.name == "postgresql":  # the code looked up, the dossier with its jobs, the rest
        assert len(filing.statements) <= 3, filing.statements
    with engine.connect() as conn:  # and in them the dossier was enrolled for the national portal's read-back
        dossier_id = conn.execute(select(tables.dossiers.c.id).where(tables.dossiers.c.code == code)).scalar_one()
        enrolled = portal_drift.check_of(conn, dossier_id)
    assert enrolled is not None and enrolled["next_check_at"] > enrolled["enrolled_at"] and enrolled["checks"] == 0


def test_a_drain_commits_once_per_batch(engine) -> None:  # noqa: ANN001
    """Three jobs of one key run one after the other, each its own batch: recording a batch and claiming the next
    share a transaction, so the drain commits four times (a claim, then a record-and-claim per batch), not six."""
    from datetime import UTC, datetime

    from gateway.config import JobSettings
    from gateway.jobs.runner import JobRunner
    from gateway.store import outbox

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in range(3):
            outbox.enqueue(conn, outbox.NewJob("q", "k", "one-key", {"n": n}), now=now, max_attempts=3)
    delivered: list[int] = []
    runner = JobRunner(engine, {"k": lambda payloads: [delivered.append(p["n"]) for p in payloads]}, JobSettings())
    with counted(engine) as drain:
        drained = runner.drain("q")
    assert delivered == [0, 1, 2] and [o.state for o in drained.outcomes] == ["done"] * 3
    assert drain.commits == 4
    if engine.dialect.name == "postgresql":  # a batch: its claim, its keys' locks, its finish with its audit record
        assert len(drain.statements) == 9, drain.statements
        assert not [sql for sql in drain.statements if sql.startswith("INSERT INTO audit_log")], drain.statements


def test_a_paid_callback_is_settled_in_one_write_and_one_commit(gw) -> None:  # noqa: ANN001
    """The settlement (payment, dossier, the portal's and the receipt's jobs, feed item, audit records) and the
    callback's own audit record: one statement after the reads and locks (were 18 in all)."""
    from tests.test_payments import FEES, ask, signed_platform_callback

    engine = gw.gateway.engine
    gw.payment.reset()
    code = gw.file(dossier_body())["code"]
    asked = ask(gw, code, FEES)
    assert asked.status_code == 201, asked.get_json()
    ref = asked.get_json()["id"]
    with counted(engine) as settling:
        r = gw.client.post("/api/v1/callbacks/payments/national_platform",
                           json=signed_platform_callback(gw, ref, 33000))
    assert r.status_code == 200 and r.get_json()["MaLoi"] == "00", r.get_json()
    assert settling.commits == 1
    if engine.dialect.name == "postgresql":  # 3 reads and locks, the keys' locks, the write
        assert len(settling.statements) <= 5, settling.statements
    with engine.connect() as conn:  # and all of it is there
        payment = conn.execute(select(tables.payments).where(tables.payments.c.reference == ref)).mappings().one()
        actions = sorted(conn.execute(select(tables.audit_log.c.action).where(
            tables.audit_log.c.action.in_(["payment.paid", "payment.callback"]),
            tables.audit_log.c.subject.in_([code, ref]))).scalars())
        kinds = sorted(conn.execute(select(tables.jobs.c.kind).where(
            tables.jobs.c.ordering_key.in_([code, ref]), tables.jobs.c.created_at >= payment["paid_at"])).scalars())
        paid_items = conn.execute(select(tables.feed_items.c.data).where(
            tables.feed_items.c.code == code, tables.feed_items.c.type == "payment.paid")).scalars().all()
        dossier = conn.execute(select(tables.dossiers).where(tables.dossiers.c.code == code)).mappings().one()
    assert payment["state"] == "paid" and payment["settled_by"] == "callback"
    assert actions == ["payment.callback", "payment.paid"]
    assert kinds == sorted([np.PROGRESS, np.SYNC_DOSSIER, "payment.receipt"]), kinds
    assert [i["payment_id"] for i in paid_items] == [ref] and dossier["fees_paid_online_at"] == payment["paid_at"]
