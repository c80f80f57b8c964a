"""The worker process: consumer threads running jobs, and a sweeper thread.

Each consumer thread owns its own broker connection (kombu connections are not thread-safe) and
acknowledges a message only after the job's outcome is committed, so a worker killed mid-delivery
leaves the message to be redelivered, and the job's expired lease to the sweeper.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from kombu import Connection
from sqlalchemy import Engine

from gateway import request_context
from gateway.config import JobSettings
from gateway.store import outbox

from .broker import Broker
from .job_metrics import PERIODIC_RUNS, PERIODIC_SECONDS
from .runner import JobRunner

log = logging.getLogger(__name__)


def publish_or_mark(engine: Engine, broker: Broker, conn: Connection | None,
                    jobs: list[tuple[int, str]]) -> list[int]:
    """Publish on `conn` (or a fresh connection); jobs that could not be sent are marked for the sweeper."""
    failed: list[int] = []
    try:
        if conn is None:
            with broker.connection() as own:
                for job_id, queue in jobs:
                    broker.publish_with(own, queue, job_id)
        else:
            for job_id, queue in jobs:
                broker.publish_with(conn, queue, job_id)
    except Exception as exc:  # noqa: BLE001 - broker trouble: the sweeper will send them
        log.warning("could not publish %d job(s): %s", len(jobs), exc)
        failed = [job_id for job_id, _ in jobs]
        with engine.begin() as db:
            outbox.mark_unpublished(db, failed)
    return failed


@dataclass
class PeriodicTask:
    """Work the sweeper thread does every `every` seconds besides sweeping (say, payment reconciliation)."""

    name: str
    every: float
    run: Callable[[], object]
    due: float = 0.0  # monotonic time of the next run


class Worker:
    def __init__(self, engine: Engine, broker: Broker, runner: JobRunner, settings: JobSettings,
                 queues: list[str], periodic: list[PeriodicTask] | None = None) -> None:
        self.engine = engine
        self.broker = broker
        self.runner = runner
        self.settings = settings
        self.queues = queues
        self.periodic = periodic or []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._sweeps = 0

    def start(self, *, sweeper: bool = True) -> None:
        for n in range(self.settings.worker_threads):
            self.threads.append(threading.Thread(target=self._consume, name=f"consumer-{n}", daemon=True))
        if sweeper:
            self.threads.append(threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True))
        for thread in self.threads:
            thread.start()
        log.info("worker started: queues %s, %d consumer threads", self.queues, self.settings.worker_threads)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)

    def wait(self) -> None:
        while not self.stopping.wait(1.0):
            pass

    # Consuming ---------------------------------------------------------------------------------

    def _consume(self) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            try:
                with self.broker.connection() as conn:
                    conn.ensure_connection(max_retries=1)
                    self.broker.declare(conn, self.queues)
                    queues = [self.broker.queue(q) for q in self.queues]

                    def on_message(body: dict, message, conn=conn) -> None:  # noqa: ANN001
                        self._handle(conn, body, message)

                    with conn.Consumer(queues, callbacks=[on_message], accept=["json"], prefetch_count=2):
                        pause = 0.5
                        while not self.stopping.is_set():
                            try:
                                conn.drain_events(timeout=1.0)
                            except TimeoutError:  # socket.timeout: no message this second
                                continue
            except Exception as exc:  # noqa: BLE001 - broker gone: reconnect with a growing pause
                if self.stopping.is_set():
                    return
                log.warning("consumer lost the broker (%s: %s); reconnecting in %.1fs",
                            type(exc).__name__, exc, pause)
                self.stopping.wait(pause)
                pause = min(pause * 2, 10.0)

    def _handle(self, conn: Connection, body: dict, message) -> None:  # noqa: ANN001
        queue = body.get("queue") if isinstance(body, dict) else None
        if queue not in self.queues:
            log.error("dropping a message for no queue of ours: %r", body)
            message.ack()
            return
        try:
            with request_context.working_on(f"job {queue}"):
                drained = self.runner.drain(queue, should_stop=self.stopping.is_set)
        except Exception:  # noqa: BLE001 - e.g. the database is down: put the message back, slow down
            log.exception("queue %s could not be drained; message requeued", queue)
            message.requeue()
            self.stopping.wait(1.0)
            return
        if drained.more:  # our time slice is over: hand the rest on rather than hold the message
            # On a connection of its own: publishing on ours would wait for the confirm by dispatching
            # our next delivery, running a whole drain inside this one.
            publish_or_mark(self.engine, self.broker, None, [(body.get("job_id", 0), queue)])
        message.ack()

    # Sweeping ----------------------------------------------------------------------------------

    REPAIR_EVERY = 60  # sweeps between two runs of the ready-flag safety net

    def sweep_once(self) -> int:
        now = datetime.now(UTC)
        self._sweeps += 1
        with self.engine.begin() as conn:
            if self._sweeps % self.REPAIR_EVERY == 1 and (repaired := outbox.repair_ready(conn)):
                log.warning("jobs heading their key were not marked ready, repaired: %s", repaired)
            for job in outbox.recover_expired_leases(conn, now=now):
                self.runner.buried(conn, job, job["last_error"] or "lease expired on the last attempt")
            due = outbox.take_due_for_publish(conn, now=now, republish_after=self.settings.republish_after_seconds)
        if due:
            publish_or_mark(self.engine, self.broker, None, due)
        return len(due)

    def _sweep_forever(self) -> None:
        while not self.stopping.wait(self.settings.sweep_interval_seconds):
            try:
                with _measured("sweep"):
                    self.sweep_once()
            except Exception as exc:  # noqa: BLE001 - database or broker down: try again next round
                log.warning("sweep failed: %s: %s", type(exc).__name__, exc)
            self.run_periodic()

    def run_periodic(self) -> None:
        for task in self.periodic:
            if time.monotonic() < task.due:
                continue
            task.due = time.monotonic() + task.every
            try:
                with _measured(task.name):
                    task.run()
            except Exception as exc:  # noqa: BLE001 - database or broker down: try again next round
                log.warning("%s failed: %s: %s", task.name, type(exc).__name__, exc)


@contextlib.contextmanager
def _measured(task: str) -> Iterator[None]:
    """Count a periodic task's runs, its thread's CPU time and its statements (under `periodic <task>`)."""
    started = time.thread_time()
    try:
        with request_context.working_on(f"periodic {task}"):
            yield
    finally:
        PERIODIC_SECONDS.labels(task).inc(time.thread_time() - started)
        PERIODIC_RUNS.labels(task).inc()
