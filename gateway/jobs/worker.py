"""The worker process: consumer threads running jobs, a thread for the background queues, and a sweeper thread.

Each consumer thread owns its own broker connection (kombu connections are not thread-safe) and
acknowledges a message only after the job's outcome is committed, so a worker killed mid-delivery
leaves the message to be redelivered, and the job's expired lease to the sweeper. The background queues (the
archive's) have one thread of their own, which yields to the others during a peak (priority.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from kombu import Connection as BrokerConnection
from sqlalchemy import ColumnElement, Connection, Engine, select

from gateway import request_context
from gateway.config import JobSettings
from gateway.store import outbox, server_clock
from gateway.store.database import reading

from .broker import Broker
from .job_metrics import PERIODIC_RUNS, PERIODIC_SECONDS, PERIODIC_SKIPPED
from .runner import JobRunner

log = logging.getLogger(__name__)


def publish_or_mark(engine: Engine, broker: Broker, conn: BrokerConnection | None,
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


# A cheap SQL condition, true when a periodic task has work (an EXISTS over a small partial index, say).
Pending = Callable[[Connection, datetime], ColumnElement[bool]]


@dataclass
class Background:
    """Queues consumed apart, on one thread, which waits before each batch while `why_wait` gives a reason."""

    queues: list[str]
    why_wait: Callable[[], str | None]
    poll_seconds: float = 1.0


@dataclass
class PeriodicTask:
    """Work the sweeper thread does every `every` seconds (say, payment reconciliation).

    With `pending`, the task runs only when that condition holds: the sweeper asks every due task's condition
    in one statement first, so a tick with nothing to do costs that one trivial query, not a transaction per
    task (issue 24: periodic work scales with change, not with time)."""

    name: str
    every: float
    run: Callable[[], object]
    pending: Pending | None = None
    due: float = 0.0  # monotonic time of the next run


class Gathering:
    """Per queue, whether one of this process's consumers is gathering before its drain claims.

    A wake-up is published after its jobs were committed, and a drain claims every ready job of its queue. So a
    wake-up that comes while another consumer gathers for the same queue is covered by that drain, which has
    not claimed yet: it is acknowledged at once. At 40 status events/s nearly every job came with a wake-up of
    its own, and each drain paid its claim, its finish and its partner call for a job or two
    (docs/performance.md). Should this process die while gathering, the covered jobs are sent on by any later
    drain of their queue, at the latest by the sweeper's republish of jobs whose wake-up led to no claim."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: set[str] = set()

    def join(self, queue: str) -> bool:
        """True: the caller gathers for `queue` (then closes and drains); False: another consumer does."""
        with self._lock:
            if queue in self._queues:
                return False
            self._queues.add(queue)
            return True

    def __contains__(self, queue: str) -> bool:
        with self._lock:
            return queue in self._queues

    def close(self, queue: str) -> None:
        """Before the claim: a wake-up that comes from now on may find its jobs claimed already, or not."""
        with self._lock:
            self._queues.discard(queue)


class Worker:
    def __init__(self, engine: Engine, broker: Broker, runner: JobRunner, settings: JobSettings,
                 queues: list[str], periodic: list[PeriodicTask] | None = None,
                 background: Background | None = None) -> None:
        self.engine = engine
        self.broker = broker
        self.runner = runner
        self.settings = settings
        self.queues = queues
        # The outbox's own safety nets first: leases run out and lost messages (asked first, like the others),
        # and the ready flags (a scan of the waiting jobs that finds nothing unless something bypassed the
        # outbox: once a minute, unasked).
        self.periodic = [
            PeriodicTask("sweep", settings.sweep_interval_seconds, self.sweep_once,
                         lambda _conn, now: outbox.sweep_pending(now, settings.republish_after_seconds)),
            # Outcomes a batch could not write while the database was out of reach (runner.record_late). Nothing to
            # ask the database: an empty list in this process costs nothing.
            PeriodicTask("late outcomes", settings.sweep_interval_seconds, runner.record_late),
            PeriodicTask("ready repair", self.REPAIR_EVERY * settings.sweep_interval_seconds, self.repair_ready),
            *(periodic or []),
        ]
        self.background = background
        self.gathering = Gathering()
        self._background_went = -1e9  # when the background thread was last told to go
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, *, sweeper: bool = True) -> None:
        behind = self.background.queues if self.background else []
        foreground = [q for q in self.queues if q not in behind]
        for n in range(self.settings.worker_threads):
            self.threads.append(threading.Thread(target=self._consume, args=(foreground, None), name=f"consumer-{n}",
                                                 daemon=True))
        if self.background is not None:
            self.threads.append(threading.Thread(target=self._consume, args=(behind, self.background),
                                                 name="background", daemon=True))
        if sweeper:
            self.threads.append(threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True))
        for thread in self.threads:
            thread.start()
        log.info("worker started: queues %s, %d consumer threads; in the background: %s", foreground,
                 self.settings.worker_threads, behind or "none")

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)

    def wait(self) -> None:
        while not self.stopping.wait(1.0):
            pass

    # Consuming ---------------------------------------------------------------------------------

    def _consume(self, names: list[str], background: Background | None) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            try:
                with self.broker.connection(consuming=True) as conn:
                    conn.ensure_connection(max_retries=1)
                    self.broker.declare(conn, names)
                    queues = [self.broker.queue(q) for q in names]

                    def on_message(body: dict, message, conn=conn) -> None:  # noqa: ANN001
                        self._handle(conn, body, message, background)

                    with conn.Consumer(queues, callbacks=[on_message], accept=["json"], prefetch_count=2):
                        pause = 0.5
                        try:
                            while not self.stopping.is_set():
                                # Heartbeats (broker.heartbeat_seconds): ours tell RabbitMQ we are alive;
                                # missing its own raise here, so a connection left half-open by a partition is
                                # dropped and made again instead of waited on for good (issue 26).
                                conn.heartbeat_check()
                                try:
                                    conn.drain_events(timeout=1.0)
                                except TimeoutError:  # socket.timeout: no message this second
                                    continue
                        except Exception:
                            # Dropped without a word: on a silent connection, cancelling the consumer and
                            # closing politely (what leaving the `with`s does) wait for answers that never come.
                            conn.collect()
                            raise
            except Exception as exc:  # noqa: BLE001 - broker gone: reconnect with a growing pause
                if self.stopping.is_set():
                    return
                log.warning("consumer lost the broker (%s: %s); reconnecting in %.1fs",
                            type(exc).__name__, exc, pause)
                self.stopping.wait(pause)
                pause = min(pause * 2, 10.0)

    def _handle(self, conn: BrokerConnection, body: dict, message,  # noqa: ANN001
                background: Background | None) -> None:
        queue = body.get("queue") if isinstance(body, dict) else None
        if queue not in self.queues:
            log.error("dropping a message for no queue of ours: %r", body)
            message.ack()
            return
        if background is not None and (turn := self._wait_turn(background, body, queue)) is not True:
            if turn is False:  # handed on: a new message wakes this thread again
                message.ack()
            return  # stopping: the message goes back to the queue with the connection
        if background is None and self.settings.gather_seconds > 0:
            if not self.gathering.join(queue):
                message.ack()  # the consumer gathering for this queue claims these jobs too
                return
            try:
                self.stopping.wait(self.settings.gather_seconds)
            finally:
                self.gathering.close(queue)
            if self.stopping.is_set():
                return  # the message goes back to the queue with the connection
        yielded = False

        def should_stop() -> bool:  # between two batches: the worker stops, or a peak began (background only)
            nonlocal yielded  # once given way, the drain is over: asked again, it must not forget (the hand-on)
            yielded = yielded or (background is not None and self._peak_began(background, queue))
            return self.stopping.is_set() or yielded

        try:
            with request_context.working_on(f"job {queue}"):
                drained = self.runner.drain(queue, should_stop=should_stop)
        except Exception:  # noqa: BLE001 - e.g. the database is down: put the message back, slow down
            log.exception("queue %s could not be drained; message requeued", queue)
            message.requeue()
            self.stopping.wait(1.0)
            return
        if drained.more or yielded:  # time slice over, or a peak: hand the rest on rather than hold the message
            # On a connection of its own: publishing on ours would wait for the confirm by dispatching
            # our next delivery, running a whole drain inside this one.
            publish_or_mark(self.engine, self.broker, None, [(body.get("job_id", 0), queue)])
        message.ack()

    def _wait_turn(self, background: Background, body: dict, queue: str) -> bool | None:
        """Wait while the background must yield. True: go; False: held for a whole time slice, handed on as a new
        message (a broker may take an old unacknowledged one back); None: the worker stops."""
        held = time.monotonic()
        if held - self._background_went < background.poll_seconds:
            return True  # asked a moment ago: a burst of wake-ups costs one look at the other queues
        said = False
        while not self.stopping.is_set():
            try:
                why = background.why_wait()
            except Exception as exc:  # noqa: BLE001 - the database is down: the drain will say so and requeue
                log.warning("%s: could not tell whether to wait (%s); going on", queue, exc)
                return True
            if why is None:
                self._background_went = time.monotonic()
                if said:
                    log.info("%s: the others caught up after %.0f s; going on", queue, time.monotonic() - held)
                return True
            if not said:
                log.info("%s waits: %s", queue, why)
                said = True
            if time.monotonic() - held > self.settings.drain_seconds:
                publish_or_mark(self.engine, self.broker, None, [(body.get("job_id", 0), queue)])
                return False
            self.stopping.wait(background.poll_seconds)
        return None

    def _peak_began(self, background: Background, queue: str) -> bool:
        """Between two batches of a background drain: whether it must give way now (its wake-up is handed on, and
        the next one waits its turn)."""
        if time.monotonic() - self._background_went < background.poll_seconds:
            return False
        try:
            why = background.why_wait()
        except Exception:  # noqa: BLE001 - the database is down: the drain will say so
            return False
        if why is None:
            self._background_went = time.monotonic()
            return False
        log.info("%s gives way between batches: %s", queue, why)
        return True

    # Sweeping ----------------------------------------------------------------------------------

    REPAIR_EVERY = 60  # sweep intervals between two runs of the ready-flag safety net

    def sweep_once(self) -> int:
        now = server_clock.now()
        with self.engine.begin() as conn:
            for job in outbox.recover_expired_leases(conn, now=now):
                self.runner.buried(conn, job, job["last_error"] or "lease expired on the last attempt")
            due = outbox.take_due_for_publish(conn, now=now, republish_after=self.settings.republish_after_seconds)
        if due:
            publish_or_mark(self.engine, self.broker, None, due)
        return len(due)

    def repair_ready(self) -> None:
        with self.engine.begin() as conn:
            if repaired := outbox.repair_ready(conn):
                log.warning("jobs heading their key were not marked ready, repaired: %s", repaired)

    def _sweep_forever(self) -> None:
        while not self.stopping.wait(self.settings.sweep_interval_seconds):
            self.run_periodic()

    def run_periodic(self) -> None:
        """Run the tasks that are due and, of those that say how, only the ones with work."""
        started = time.monotonic()
        due = [task for task in self.periodic if started >= task.due]
        for task in due:
            task.due = started + task.every
        with_work = self._with_work([task for task in due if task.pending is not None])
        for task in due:
            if task.pending is not None and task.name not in with_work:
                PERIODIC_SKIPPED.labels(task.name).inc()
                continue
            try:
                with _measured(task.name):
                    task.run()
            except Exception as exc:  # noqa: BLE001 - database or broker down: try again next round
                log.warning("%s failed: %s: %s", task.name, type(exc).__name__, exc)

    def _with_work(self, asked: list[PeriodicTask]) -> set[str]:
        """The names of the tasks whose condition holds, asked in one statement (no transaction around it on
        PostgreSQL). If the question fails (the database is down), every task tries, as each handles that."""
        if not asked:
            return set()
        now = server_clock.now()
        try:
            with _measured("look"), reading(self.engine) as conn:
                flags = conn.execute(select(*(task.pending(conn, now).label(f"t{n}")  # type: ignore[misc]
                                              for n, task in enumerate(asked)))).one()
        except Exception as exc:  # noqa: BLE001 - the tasks will say what is wrong
            log.warning("periodic look failed: %s: %s", type(exc).__name__, exc)
            return {task.name for task in asked}
        return {task.name for task, flag in zip(asked, flags, strict=True) if flag}


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
