"""The one place that wires settings, database, broker, adapters and job handlers together."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.adapters import national_portal as np
from gateway.adapters import payment as pay
from gateway.adapters.base import BatchHandler
from gateway.adapters.payment.base import PaymentProvider
from gateway.config import Settings, load_settings
from gateway.jobs.broker import Broker, Publisher
from gateway.jobs.runner import DeadHook, JobRunner
from gateway.jobs.worker import PeriodicTask, Worker
from gateway.services.payment_jobs import PaymentJobs
from gateway.services.unit_of_work import Context
from gateway.store.database import make_engine

QUEUES = [np.QUEUE, pay.QUEUE]


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    broker: Broker
    publisher: Publisher
    payment_providers: dict[str, PaymentProvider]
    context: Context = field(init=False)
    payment_jobs: PaymentJobs = field(init=False)
    runner: JobRunner = field(init=False)  # also used by requests that try a job at once

    def __post_init__(self) -> None:
        self.context = Context(self.engine, self.settings.jobs, self.publisher.publish, self.settings.payment)
        self.payment_jobs = PaymentJobs(self.context, self.payment_providers)
        self.runner = JobRunner(self.engine, handlers(self), self.settings.jobs, on_dead=dead_hooks(self))

    def close(self) -> None:
        self.publisher.close()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None) -> Gateway:
    settings = settings or load_settings()
    engine = make_engine(settings.database.url, settings.database.pool_size)
    broker = Broker(settings.broker, QUEUES)
    return Gateway(settings, engine, broker, Publisher(broker), pay.build_providers(settings.payment))


def handlers(gateway: Gateway) -> dict[str, BatchHandler]:
    portal = np.NationalPortalClient(gateway.settings.national_portal)
    jobs = gateway.payment_jobs
    return {
        np.SYNC_DOSSIER: portal.sync_dossier_many, np.PROGRESS: portal.report_progress_many,
        pay.INIT: jobs.init_many, pay.QUERY: jobs.query_many, pay.RECEIPT: jobs.receipt_many,
    }


def dead_hooks(gateway: Gateway) -> dict[str, DeadHook]:
    return {pay.INIT: gateway.payment_jobs.init_dead}


def build_worker(gateway: Gateway) -> Worker:
    reconcile = PeriodicTask("payment reconciliation", gateway.settings.payment.scan_interval_seconds,
                             gateway.payment_jobs.schedule_reconciliation)
    return Worker(gateway.engine, gateway.broker, gateway.runner, gateway.settings.jobs, QUEUES, [reconcile])
