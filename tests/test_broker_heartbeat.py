"""A worker whose broker connection goes silent (issue 26): a partition, a broker that vanished, a firewall that
dropped the connection's state. Without AMQP heartbeats the worker's consumer waited on the half-open connection
for good (nothing in it ever sends: it only reads) and never consumed again. Between the worker and RabbitMQ, a
relay of the test's own that goes silent: it stops passing bytes both ways and keeps the sockets open, as a
cut-off link does. Production stack only (the embedded stack's broker is a folder on the same host)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import AMQP_URL, wait_for
from tests.tcp_relay import Relay


def test_a_worker_whose_broker_connection_went_silent_connects_again(stack, engine, monkeypatch):
    if stack.name != "production":
        pytest.skip("the embedded stack's broker is a folder on this host: no connection to go silent")
    from gateway.bootstrap import bootstrap, build_worker

    amqp = urlsplit(AMQP_URL)
    link = Relay((amqp.hostname or "127.0.0.1", amqp.port or 5672))
    prefix = f"gwhb_{uuid.uuid4().hex[:8]}"
    for key, value in {"GATEWAY_DATABASE__URL": engine.url.render_as_string(hide_password=False),
                       "GATEWAY_BROKER__URL": f"amqp://{amqp.username}:{amqp.password}@127.0.0.1:{link.port}//",
                       "GATEWAY_BROKER__QUEUE_PREFIX": prefix, "GATEWAY_BROKER__HEARTBEAT_SECONDS": "2",
                       "GATEWAY_JOBS__DRAIN_SECONDS": "3", "GATEWAY_JOBS__WORKER_THREADS": "1"}.items():
        monkeypatch.setenv(key, value)
    gateway = bootstrap()
    worker = build_worker(gateway)
    worker.start(sweeper=False)
    try:
        # Connected, perhaps still subscribing (a consumer's five queues): silenced then, it waits for the broker's
        # basic.consume-ok, where no heartbeat is checked; the consuming connection's read timeout ends that wait.
        # Which of the two a run catches varies; both must come back (before the read timeout, 1 run in 3 hung).
        consumers = wait_for(lambda: link.accepted >= 2 and link.accepted, 20, what="the consumers connected")
        link.silence()
        # Its heartbeats unanswered, each consumer drops the connection and makes a new one (through the link,
        # which lets new connections pass). Without heartbeats it waits on the silent one for good.
        wait_for(lambda: link.accepted >= consumers + 2, 30, interval=0.2, what="the consumers connected again")
    finally:
        worker.stop(timeout=5)
        gateway.close()
        link.close()
