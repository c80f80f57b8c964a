"""The one place that wires settings, database, broker and adapters together."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.adapters import national_portal as np
from gateway.adapters.base import BatchHandler
from gateway.config import Settings, load_settings
from gateway.jobs.broker import Broker, Publisher
from gateway.jobs.runner import JobRunner
from gateway.jobs.worker import Worker
from gateway.services.unit_of_work import Context
from gateway.store.database import make_engine

QUEUES = [np.QUEUE]


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    broker: Broker
    publisher: Publisher
    context: Context = field(init=False)

    def __post_init__(self) -> None:
        self.context = Context(self.engine, self.settings.jobs, self.publisher.publish)

    def close(self) -> None:
        self.publisher.close()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None) -> Gateway:
    settings = settings or load_settings()
    engine = make_engine(settings.database.url, settings.database.pool_size)
    broker = Broker(settings.broker)
    return Gateway(settings, engine, broker, Publisher(broker))


def handlers(settings: Settings) -> dict[str, BatchHandler]:
    portal = np.NationalPortalClient(settings.national_portal)
    return {np.SYNC_DOSSIER: portal.sync_dossier_many, np.PROGRESS: portal.report_progress_many}


def build_worker(gateway: Gateway) -> Worker:
    runner = JobRunner(gateway.engine, handlers(gateway.settings), gateway.settings.jobs)
    return Worker(gateway.engine, gateway.broker, runner, gateway.settings.jobs, QUEUES)
