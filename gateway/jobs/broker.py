"""kombu plumbing: one durable queue per adapter, persistent messages carrying only a job id.

The message is a wake-up call, the database row is the job: a lost or repeated message costs
nothing but a sweep or a no-op claim.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue

from gateway.config import BrokerSettings

log = logging.getLogger(__name__)


class Broker:
    def __init__(self, settings: BrokerSettings, queues: list[str] | None = None) -> None:
        self.settings = settings
        self.queues = queues or []  # every queue of the gateway (bound up front on the on-disk transport)
        self.exchange = Exchange(settings.queue_prefix, type="direct", durable=True)

    def routing_key(self, queue: str) -> str:
        return f"{self.settings.queue_prefix}.{queue}"

    def queue(self, name: str) -> Queue:
        key = self.routing_key(name)
        return Queue(key, self.exchange, routing_key=key, durable=True)

    def connection(self, consuming: bool = False) -> Connection:
        """A connection; `consuming` ones (the workers') carry AMQP heartbeats, which their owner must send
        by calling heartbeat_check() at least every second or so (Worker._consume does, between messages)."""
        s = self.settings
        if s.url.startswith("filesystem"):
            folder = Path(s.data_folder)
            for sub in ("queue", "control"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            self._seed_bindings(folder / "control")
            options: dict[str, Any] = {
                "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                "control_folder": str(folder / "control"), "store_processed": False,
            }
            return Connection(s.url, transport_options=options)
        # Publisher confirms: publish() returns only once RabbitMQ has taken the message.
        # Publishing connections have none: an API process may sit idle for long and nobody would send them.
        options = {"confirm_publish": True}
        if consuming and s.heartbeat_seconds:
            # Heartbeats are checked between messages only; a partition while the consumer is being set up
            # (waiting for basic.consume-ok) would be waited on for good. A read that hears nothing for as long
            # as the heartbeats allow fails instead, and the consumer connects again.
            options["read_timeout"] = 2.5 * s.heartbeat_seconds
        return Connection(s.url, connect_timeout=s.publish_timeout_seconds,
                          heartbeat=s.heartbeat_seconds if consuming else 0, transport_options=options)

    def _seed_bindings(self, control: Path) -> None:
        """Write the on-disk exchange's binding table once, atomically, before any process declares.

        kombu's filesystem transport creates that file with a truncating open: two processes declaring
        different queues at the same moment can interleave their writes into a file that is no longer
        JSON, after which every publish fails. With every binding already there, nobody rewrites it."""
        target = control / f"{self.settings.queue_prefix}.exchange"
        if target.exists() or not self.queues:
            return
        keys = [self.routing_key(q) for q in self.queues]
        temp = control / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
        temp.write_text(json.dumps([[key, "", key] for key in keys]))
        with contextlib.suppress(FileExistsError):  # another process was first: its table is the same
            os.link(temp, target)  # atomic: the file appears whole, or not at all
        temp.unlink()

    def declare(self, conn: Connection, queues: list[str]) -> None:
        channel = conn.default_channel
        for name in queues:
            self.queue(name)(channel).declare()

    def publish_with(self, conn: Connection, queue: str, job_id: int) -> None:
        producer = conn.Producer(serializer="json")
        producer.publish({"job_id": job_id, "queue": queue}, exchange=self.exchange,
                         routing_key=self.routing_key(queue), declare=[self.queue(queue)], delivery_mode=2,
                         retry=False)

    def ping(self) -> None:
        with self.connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=self.settings.publish_timeout_seconds)


class Publisher:
    """Publishes job ids from API processes: thread-safe, never blocks a request for long.

    After a failure it stops trying for a few seconds (the jobs stay in the outbox, unpublished,
    and the sweeper sends them), so a broker outage costs requests nothing but a log line.
    """

    PAUSE_AFTER_FAILURE = 5.0

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._paused_until = 0.0

    def publish(self, jobs: list[tuple[int, str]]) -> list[int]:
        """Publish (job id, queue) pairs; return the ids that could not be published."""
        if not jobs:
            return []
        with self._lock:
            if time.monotonic() < self._paused_until:
                return [job_id for job_id, _ in jobs]
            for attempt in (1, 2):  # a second try on a fresh connection after e.g. a broker restart
                try:
                    if self._conn is None:
                        self._conn = self.broker.connection()
                        self._conn.ensure_connection(max_retries=1,
                                                     timeout=self.broker.settings.publish_timeout_seconds)
                    for job_id, queue in jobs:
                        self.broker.publish_with(self._conn, queue, job_id)
                    return []
                except Exception as exc:  # noqa: BLE001 - any broker trouble means "leave it to the sweeper"
                    self._drop()
                    if attempt == 2:
                        log.warning("publish failed, jobs left to the sweeper: %s", exc)
                        self._paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            return [job_id for job_id, _ in jobs]

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is already broken
                self._conn.release()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
