"""The outbox's ordering rules, on a database of their own (the `engine` fixture: no worker touches it),
on both stacks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import select, update

from gateway.store import outbox
from gateway.store.one_trip import OneTrip
from gateway.store.tables import audit_log, jobs

Q = "national_portal"


def now() -> datetime:
    return datetime.now(UTC)


def add(engine, key: str) -> tuple[int, bool]:
    with engine.begin() as conn:
        return outbox.enqueue(conn, outbox.NewJob(Q, "k", key, {}), now=now(), max_attempts=3)


def claim(engine, limit: int = 50) -> outbox.Claim:
    with engine.begin() as conn:
        return outbox.claim_heads(conn, Q, now=now(), lease=30, limit=limit)


def test_only_the_head_of_each_key_is_claimed(engine):
    a1, waiting = add(engine, "A")
    assert not waiting
    a2, waiting = add(engine, "A")
    assert waiting
    b1, _ = add(engine, "B")
    first = claim(engine)
    assert [j["id"] for j in first.jobs] == [a1, b1]
    assert claim(engine).jobs == []  # a2 waits for a1
    with engine.begin() as conn:
        assert outbox.complete(conn, first.jobs, first.lease_end, now=now()) == [a1, b1]
    assert [j["id"] for j in claim(engine).jobs] == [a2]


def test_a_retrying_or_dead_head_holds_the_key(engine):
    a1, _ = add(engine, "A")
    a2, _ = add(engine, "A")
    c = claim(engine)
    with engine.begin() as conn:
        outbox.bury(conn, a1, c.lease_end, now=now(), error="boom")
    assert claim(engine).jobs == []
    with engine.begin() as conn:
        job, ready = outbox.discard(conn, a1, now=now())
    assert job["state"] == "discarded" and ready == [a2]
    assert [j["id"] for j in claim(engine).jobs] == [a2]


def test_an_outcome_after_the_lease_was_taken_back_is_refused(engine):
    a1, _ = add(engine, "A")
    c = claim(engine)
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == a1).values(locked_until=datetime(2000, 1, 1, tzinfo=UTC)))
        outbox.recover_expired_leases(conn, now=now())
    again = claim(engine)
    assert [j["id"] for j in again.jobs] == [a1]
    with engine.begin() as conn:
        assert outbox.complete(conn, c.jobs, c.lease_end, now=now()) == []  # the old holder
        assert outbox.complete(conn, again.jobs, again.lease_end, now=now()) == [a1]


def test_a_batchs_audit_records_go_in_with_it_only_if_every_job_was_done(engine):
    """runner._record hands finish() the records of its jobs as done: written in the same statement (PostgreSQL)
    when every job was, and not at all when a claim was lost meanwhile (the runner then writes what happened)."""
    def records(tag: str) -> list[dict]:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.subject == tag)).mappings()]

    def done_records(jobs_done: list[int], tag: str) -> list[dict]:
        return [{"at": now(), "actor": "worker", "action": "job.done", "subject": tag,
                 "detail": {"kind": "k", "jobs": jobs_done}}]

    a1, _ = add(engine, "A")
    b1, _ = add(engine, "B")
    c = claim(engine)
    with engine.begin() as conn:  # b1's claim ran out and the sweeper took it back
        conn.execute(update(jobs).where(jobs.c.id == b1).values(locked_until=datetime(2000, 1, 1, tzinfo=UTC)))
        outbox.recover_expired_leases(conn, now=now())
    with engine.begin() as conn:
        lost = outbox.finish(conn, c.jobs, c.lease_end, now=now(), audit=done_records([a1, b1], "lost-one"))
    assert lost.done == [a1] and not lost.audited and records("lost-one") == []

    c1, _ = add(engine, "C")
    c = claim(engine)
    assert [j["id"] for j in c.jobs] == [b1, c1]
    with engine.begin() as conn:
        clean = outbox.finish(conn, c.jobs, c.lease_end, now=now(), audit=done_records([b1, c1], "all-done"))
    assert sorted(clean.done) == [b1, c1]
    written = records("all-done")
    if engine.dialect.name == "postgresql":
        assert clean.audited and [(r["action"], r["detail"]["jobs"]) for r in written] == [("job.done", [b1, c1])]
    else:  # SQLite: the runner writes them after, as before
        assert not clean.audited and written == []


def test_a_job_enqueued_while_the_one_before_completes_is_never_stranded(engine):
    """The race the key lock closes: enqueue and completion of the same key at the same moment."""
    for n in range(40):
        key = f"K{n}"
        add(engine, key)
        c = claim(engine)
        barrier = threading.Barrier(2)

        def enqueue(key=key, barrier=barrier) -> None:
            barrier.wait()
            add(engine, key)

        def finish(c=c, barrier=barrier) -> None:
            barrier.wait()
            with engine.begin() as conn:
                outbox.complete(conn, c.jobs, c.lease_end, now=now())

        threads = [threading.Thread(target=enqueue), threading.Thread(target=finish)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        nxt = claim(engine)
        assert [j["ordering_key"] for j in nxt.jobs] == [key], f"round {n}: the new job was left unready"
        with engine.begin() as conn:
            outbox.complete(conn, nxt.jobs, nxt.lease_end, now=now())
    with engine.begin() as conn:
        assert outbox.repair_ready(conn) == []


def test_repair_finds_a_head_left_unready(engine):
    a1, _ = add(engine, "A")
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == a1).values(ready=False))
        assert outbox.repair_ready(conn) == [a1]
    assert [j["id"] for j in claim(engine).jobs] == [a1]


def test_a_job_claimed_at_enqueue_heads_a_new_key_and_is_recovered_if_its_runner_dies(engine):
    with engine.begin() as conn:
        trip = OneTrip()
        claimed = outbox.add_claimed(trip, outbox.NewJob(Q, "k", "NEW", {"n": 1}), now=now(), lease=5,
                                     max_attempts=1)
        trip.run(conn)
    [job] = claimed.claim().jobs
    assert job["state"] == "in_flight" and job["attempts"] == 1 and job["ready"]
    with engine.connect() as conn:  # the claim its runner holds is the row as stored, column for column
        assert dict(outbox.get(conn, job["id"])) == job
    assert job["id"] not in [j["id"] for j in claim(engine).jobs]  # nobody else takes it while it is held
    # Its runner (a request) died: once the lease is over, the job is out of attempts, so a dead letter,
    # and the sweeper reports it so that its kind can react.
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(locked_until=datetime(2000, 1, 1, tzinfo=UTC)))
        dead = outbox.recover_expired_leases(conn, now=now())
    assert [d["id"] for d in dead] == [job["id"]] and dead[0]["state"] == "dead"


# Archive packages: delayed jobs, claimed as a batch once the first is due (runner.QueuePolicy early) ----------

A = "archive"


def add_delayed(engine, key: str, delay: float, at: datetime) -> int:
    with engine.begin() as conn:
        [job_id] = outbox.enqueue_many(conn, [(outbox.NewJob(A, "archive.build", key, {}, delay=delay), True)],
                                       now=at, max_attempts=3)
    return job_id


def claim_archive(engine, at: datetime, limit: int, early: bool = True) -> list[int]:
    with engine.begin() as conn:
        return [j["id"] for j in outbox.claim_heads(conn, A, now=at, lease=30, limit=limit, early=early).jobs]


def test_a_delayed_job_waits_unpublished_then_brings_the_jobs_behind_it_up_to_the_batch(engine):
    from datetime import timedelta

    t0 = now()
    first = add_delayed(engine, "P1", 10, t0)
    later = [add_delayed(engine, f"P{n}", 10, t0 + timedelta(seconds=n)) for n in range(2, 6)]
    with engine.begin() as conn:
        # Nobody publishes for a delayed job at commit; the sweeper does once it is due.
        assert outbox.take_due_for_publish(conn, now=t0 + timedelta(seconds=5), republish_after=60) == []
        assert outbox.take_due_for_publish(conn, now=t0 + timedelta(seconds=10), republish_after=60) == [(first, A)]
    assert claim_archive(engine, t0 + timedelta(seconds=9), limit=3) == []  # none due yet: the batch is filling
    assert claim_archive(engine, t0 + timedelta(seconds=10), limit=3, early=False) == [first]  # the usual claim
    assert claim_archive(engine, t0 + timedelta(seconds=11), limit=3) == []  # the head is taken, the next not due
    # Once the next is due, it brings the ones queued behind it, before their time, up to the batch size.
    assert claim_archive(engine, t0 + timedelta(seconds=12), limit=3) == later[:3]
    assert claim_archive(engine, t0 + timedelta(seconds=15), limit=3) == later[3:]


def test_the_backlog_background_queues_yield_to_counts_due_unclaimed_jobs_of_the_others(engine):
    from datetime import timedelta

    from gateway.jobs.priority import YieldToOthers

    t0 = now()
    for n in range(5):
        add(engine, f"K{n}")  # five due portal jobs nobody claimed yet
    add_delayed(engine, "P1", 0, t0 - timedelta(seconds=30))  # an archive job due for 30 s
    with engine.begin() as conn:
        assert outbox.due_backlog(conn, now=now(), besides=[A], limit=100) == 5
        assert outbox.due_backlog(conn, now=now(), besides=[A], limit=3) == 3  # counted no further than asked
        assert outbox.due_backlog(conn, now=now(), besides=[A, Q], limit=100) == 0
        assert abs((outbox.oldest_due(conn, [A], now=now()) - (t0 - timedelta(seconds=30))).total_seconds()) < 1
    assert "more than 4 jobs" in YieldToOthers(engine, [A], 4, 600).why_wait()
    assert YieldToOthers(engine, [A], 5, 600).why_wait() is None  # not more than the threshold: go
    assert YieldToOthers(engine, [A], 4, 20).why_wait() is None  # waited 30 s, more than it may: go anyway
    assert YieldToOthers(engine, [A], 4, 0).why_wait() is None  # 0: never waits
    claim(engine)  # the portal's jobs taken by a worker: no backlog left
    assert YieldToOthers(engine, [A], 4, 600).why_wait() is None


def test_a_queues_policy_sizes_every_claim_of_a_drain_the_one_made_where_a_batch_is_recorded_too(engine):
    """The archive's QueuePolicy (its own batch size, a due job bringing the ones behind it) holds for a drain's
    first claim and for the one made in the transaction that records a batch: batches of two, though
    jobs.batch_size is one, and the last job, not due yet, goes along with the one before it."""
    from gateway.config import JobSettings
    from gateway.jobs.runner import JobRunner, QueuePolicy

    t0 = now()
    with engine.begin() as conn:
        outbox.enqueue_many(conn, [(outbox.NewJob(A, "archive.build", f"P{n}", {"key": f"P{n}"}, delay=delay), True)
                                   for n, delay in enumerate((0, 0, 0, 60))], now=t0, max_attempts=3)
    batches: list[list[str]] = []

    def seal(payloads: list[dict]) -> list[None]:
        batches.append([p["key"] for p in payloads])
        return [None] * len(payloads)

    runner = JobRunner(engine, {"archive.build": seal}, JobSettings(batch_size=1),
                       policies={A: QueuePolicy(batch_size=2, lease_seconds=30, early=True)})
    drained = runner.drain(A)
    assert batches == [["P0", "P1"], ["P2", "P3"]]
    assert [o.state for o in drained.outcomes] == ["done"] * 4 and not drained.more


def test_a_background_drain_that_gave_way_hands_its_wake_up_on_even_if_the_peak_is_over_when_asked_again(gw, engine):
    """Between two batches a background drain asks whether a peak began. Once it gave way it hands its wake-up on,
    even if, asked again a moment later, the peak is over: else the jobs left would wait for the sweeper."""
    import uuid

    from sqlalchemy import select

    from gateway.config import JobSettings
    from gateway.jobs.runner import JobRunner
    from gateway.jobs.worker import Background, Worker

    queue = f"bg-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        for n in range(3):
            outbox.enqueue(conn, outbox.NewJob(queue, "k", f"K{n}", {}), now=now(), max_attempts=3)
    answers = iter([None, "a peak began", None])  # before the drain: go; between two batches: give way; then: over

    class Message:
        acked = 0

        def ack(self) -> None:
            self.acked += 1

        def requeue(self) -> None:
            raise AssertionError("requeued")

    broker = gw.gateway.broker
    settings = JobSettings(batch_size=1)
    runner = JobRunner(engine, {"k": lambda payloads: [None] * len(payloads)}, settings)
    background = Background([queue], lambda: next(answers, None), poll_seconds=0.0)
    worker = Worker(engine, broker, runner, settings, [queue], [], background)
    message = Message()
    worker._handle(None, {"job_id": 0, "queue": queue}, message, background)
    assert message.acked == 1
    with engine.connect() as conn:  # one batch ran, then it gave way: the other two wait, ready
        states = sorted(conn.execute(select(jobs.c.state).where(jobs.c.queue == queue)).scalars())
    assert states == ["done", "pending", "pending"]
    with broker.connection() as conn:  # and a wake-up for them is on the queue
        handed_on = conn.SimpleQueue(broker.queue(queue))
        try:
            woken = handed_on.get(timeout=10)
            assert woken.payload["queue"] == queue
            woken.ack()
        finally:
            handed_on.close()


def test_wake_ups_that_come_while_a_drain_gathers_are_covered_by_it(gw, engine):
    """A wake-up waits jobs.gather_seconds before its drain claims; the wake-ups of the same queue that come
    meanwhile are acknowledged at once, their jobs going out in that drain's batch: one partner call, not three."""
    import uuid

    from gateway.config import JobSettings
    from gateway.jobs.runner import JobRunner
    from gateway.jobs.worker import Worker
    from tests.conftest import wait_for

    queue = f"gather-{uuid.uuid4().hex[:8]}"
    calls: list[list[str]] = []

    class Message:
        def __init__(self) -> None:
            self.acked = threading.Event()

        def ack(self) -> None:
            self.acked.set()

        def requeue(self) -> None:
            raise AssertionError("requeued")

    def enqueue(key: str) -> None:
        with engine.begin() as conn:
            outbox.enqueue(conn, outbox.NewJob(queue, "k", key, {"key": key}), now=now(), max_attempts=3)

    settings = JobSettings(gather_seconds=1.0)
    runner = JobRunner(engine, {"k": lambda payloads: [calls.append([p["key"] for p in payloads])] and
                                [None] * len(payloads)}, settings)
    worker = Worker(engine, gw.gateway.broker, runner, settings, [queue], [])
    enqueue("K0")
    first = Message()
    gathering = threading.Thread(target=worker._handle, args=(None, {"job_id": 0, "queue": queue}, first, None))
    gathering.start()
    wait_for(lambda: queue in worker.gathering, 5, what="the first wake-up gathering")
    for key in ("K1", "K2"):  # committed, then their wake-ups: covered, acknowledged without a drain of their own
        enqueue(key)
        covered = Message()
        worker._handle(None, {"job_id": 0, "queue": queue}, covered, None)
        assert covered.acked.is_set() and calls == []
    gathering.join(10)
    assert first.acked.is_set() and calls == [["K0", "K1", "K2"]]
    after = Message()  # once the drain has claimed, a wake-up gathers again and drains what came since
    enqueue("K3")
    worker._handle(None, {"job_id": 0, "queue": queue}, after, None)
    assert after.acked.is_set() and calls == [["K0", "K1", "K2"], ["K3"]]
