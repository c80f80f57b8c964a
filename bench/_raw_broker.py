"""The broker ceiling: the gateway's own kombu publish path and a worker-like consumer, with no database
and no HTTP, on a queue and exchange of their own that are deleted afterwards.

Publishing uses gateway.jobs.broker.Broker.publish_with (persistent messages, durable queue, publisher
confirms: one broker round trip per message); consuming uses the worker's settings (prefetch, one ack
per message). Both run in this one thread, one after the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kombu import Connection

from gateway.config import BrokerSettings
from gateway.jobs.broker import Broker


@dataclass(frozen=True)
class RawResult:
    messages: int
    publish_seconds: float
    consume_seconds: float
    prefetch: int

    @property
    def publish_rate(self) -> float:
        return self.messages / max(self.publish_seconds, 1e-9)

    @property
    def consume_rate(self) -> float:
        return self.messages / max(self.consume_seconds, 1e-9)

    @property
    def rate(self) -> float:
        """Messages per second through one publish plus one consume+ack each."""
        return self.messages / max(self.publish_seconds + self.consume_seconds, 1e-9)


def _publish(broker: Broker, conn: Connection, queue: str, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        broker.publish_with(conn, queue, n)
    return time.perf_counter() - started


def _consume(broker: Broker, conn: Connection, queue: str, count: int, prefetch: int, time_limit: float) -> float:
    received = 0

    def on_message(body: dict, message) -> None:  # noqa: ANN001 - kombu's Message
        nonlocal received
        received += 1
        message.ack()

    deadline = time.monotonic() + time_limit
    started = time.perf_counter()
    with conn.Consumer([broker.queue(queue)], callbacks=[on_message], accept=["json"], prefetch_count=prefetch):
        while received < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw consume: {received}/{count} messages in {time_limit:.0f}s")
            try:
                conn.drain_events(timeout=1.0)
            except TimeoutError:
                continue
    return time.perf_counter() - started


def measure(amqp_url: str, prefix: str, count: int, prefetch: int, time_limit: float = 120.0) -> RawResult:
    broker = Broker(BrokerSettings(url=amqp_url, queue_prefix=prefix))
    queue = "raw"
    try:
        with broker.connection() as pub_conn, broker.connection() as sub_conn:
            broker.declare(pub_conn, [queue])
            pub_conn.default_channel.queue_purge(broker.routing_key(queue))
            publish_seconds = _publish(broker, pub_conn, queue, count)
            consume_seconds = _consume(broker, sub_conn, queue, count, prefetch, time_limit)
    finally:
        with broker.connection() as conn:
            conn.default_channel.queue_delete(broker.routing_key(queue))
            conn.default_channel.exchange_delete(prefix)
    return RawResult(count, publish_seconds, consume_seconds, prefetch)
