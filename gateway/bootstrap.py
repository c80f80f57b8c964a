"""The one place that wires settings, database, broker, adapters and job handlers together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine

from gateway import signature
from gateway.adapters import archive as archiving
from gateway.adapters import national_portal as np
from gateway.adapters import payment as pay
from gateway.adapters import postal, sms_email
from gateway.adapters.archive.storage import PackageStore
from gateway.adapters.archive.tsa import TsaClient
from gateway.adapters.base import BatchHandler, one_by_one
from gateway.adapters.payment.base import PaymentProvider
from gateway.adapters.postal.vnpost import VNPostClient
from gateway.config import Settings, load_settings
from gateway.domain.working_calendar import WorkingCalendar
from gateway.jobs.broker import Broker, Publisher
from gateway.jobs.priority import YieldToOthers
from gateway.jobs.runner import DeadHook, JobRunner, QueuePolicy
from gateway.jobs.worker import Background, PeriodicTask, Worker
from gateway.services.access.api_keys import KeyRing
from gateway.services.access.rate_limit import LocalBuckets, RateLimiter, RedisWindow
from gateway.services.archive.minimise import Minimiser
from gateway.services.archive.renewal import ArchiveRenewal
from gateway.services.archive.sealing import Archive
from gateway.services.audit import chain as audit_chain
from gateway.services.audit.anchors import AuditAnchoring
from gateway.services.dossiers import sla
from gateway.services.dossiers.deliveries import DeliveryJobs
from gateway.services.dossiers.signatures import AttachmentSignatureJobs, Signatures
from gateway.services.notifications.messages import NotificationJobs, Notifier
from gateway.services.one_stop.webhook_push import WebhookPusher
from gateway.services.ops import jobs as outbox_jobs
from gateway.services.ops import queue_history
from gateway.services.payments.jobs import PaymentJobs
from gateway.services.portal_drift.reconciler import PortalReconciler
from gateway.services.unit_of_work import Context
from gateway.store import archive as packages
from gateway.store import (
    audit,
    db_metrics,
    deliveries,
    dossiers,
    outbox,
    payments,
    portal_drift,
    server_clock,
    webhook_cursor,
)
from gateway.store.database import make_engine

QUEUES = [np.QUEUE, pay.QUEUE, sms_email.QUEUE, postal.QUEUE, signature.QUEUE, archiving.QUEUE]


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    broker: Broker
    publisher: Publisher
    payment_providers: dict[str, PaymentProvider]
    signatures: Signatures
    keys: KeyRing = field(init=False)
    limiter: RateLimiter = field(init=False)
    context: Context = field(init=False)
    payment_jobs: PaymentJobs = field(init=False)
    notification_jobs: NotificationJobs = field(init=False)
    delivery_jobs: DeliveryJobs = field(init=False)
    attachment_jobs: AttachmentSignatureJobs = field(init=False)
    archive: Archive = field(init=False)
    minimiser: Minimiser = field(init=False)
    renewal: ArchiveRenewal = field(init=False)
    runner: JobRunner = field(init=False)  # also used by requests that try a job at once
    drift: PortalReconciler = field(init=False)  # reading the national portal back (reconciliation)

    def __post_init__(self) -> None:
        s = self.settings
        calendar = WorkingCalendar.of(s.sla.extra_days_off, s.sla.extra_working_days)
        self.context = Context(self.engine, s.jobs, self.publisher.publish, s.payment,
                               notifier=Notifier(s.notifications), calendar=calendar,
                               acknowledge_within_hours=s.sla.acknowledge_within_hours, postal=s.postal,
                               verify_attachments=s.signature.verify_attachments, archive=s.archive.enabled,
                               archive_batch_wait=s.archive.batch_wait_seconds,
                               first_portal_check=timedelta(
                                   seconds=s.national_portal.reconcile.first_check_after_seconds))
        self.payment_jobs = PaymentJobs(self.context, self.payment_providers)
        self.notification_jobs = NotificationJobs(self.context, sms_email.build_sms(s.notifications),
                                                  sms_email.build_email(s.notifications))
        self.delivery_jobs = DeliveryJobs(self.context, VNPostClient(s.postal))
        self.attachment_jobs = AttachmentSignatureJobs(self.context, self.signatures)
        self.archive = build_archive(self)
        self.minimiser = Minimiser(self.context, s.archive, self.archive.store)
        self.renewal = ArchiveRenewal(self.archive)
        self.keys = KeyRing(self.engine, s.auth)
        self.limiter = RedisWindow(s.auth.rate_limit_redis_url) if s.auth.rate_limit_redis_url else LocalBuckets()
        # Reading the portal back stops while this process takes the portal to be down (the runner's outage watch).
        self.drift = PortalReconciler(self.context, np.NationalPortalClient(s.national_portal), s.national_portal,
                                      portal_down=lambda: self.runner.outages.down(np.QUEUE))
        self.runner = JobRunner(self.engine, handlers(self), s.jobs, on_dead=dead_hooks(self), policies={
            # Batches of packages under one archive timestamp; their retries come back together (docs/archive.md).
            archiving.QUEUE: QueuePolicy(max(s.archive.batch_size, s.jobs.batch_size), s.archive.batch_lease_seconds,
                                         early=True)})

    @property
    def notifier(self) -> Notifier:
        assert self.context.notifier is not None
        return self.context.notifier

    def close(self) -> None:
        self.signatures.close()
        self.publisher.close()
        server_clock.let_go(self.engine)
        self.engine.dispose()


def bootstrap(settings: Settings | None = None) -> Gateway:
    settings = settings or load_settings()
    engine = make_engine(settings.database.url, settings.database.pool_size, settings.database)
    db_metrics.count(engine)
    server_clock.keep_in_step(engine)  # every host keeps the database's time (leases, schedules)
    broker = Broker(settings.broker, QUEUES)
    signatures = Signatures(settings.signature)  # a bad trust folder stops the start here
    signatures.trust.log_fingerprints()
    return Gateway(settings, engine, broker, Publisher(broker), pay.build_providers(settings.payment), signatures)


def build_archive(gateway: Gateway) -> Archive:
    from gateway.services.archive.offline import roots_from
    from gateway.signature.ltv import LtvExtender, check_ltv
    from gateway.signature.sandbox import SandboxBusy, SandboxLimits, VerificationRefused, VerifierSandbox

    s, a = gateway.settings, gateway.settings.archive
    roots = roots_from(s.archive_trust_path)  # the TSA's and signers' roots, as the CLI's checks read them
    # Extending a PDF parses hostile input, like verifying it: in the same kind of capped, killable process.
    sandbox = VerifierSandbox(partial(LtvExtender, a.tsa_url, a.tsa_timeout_seconds, [r.dump() for r in roots],
                                      a.fetch_timeout_seconds),
                              SandboxLimits(processes=1, time_limit_seconds=max(60.0, s.signature.time_limit_seconds),
                                            memory_limit_mb=s.signature.memory_limit_mb))

    def extend(pdf: bytes) -> dict:
        try:
            return sandbox.verify(pdf)
        except VerificationRefused as exc:
            return {"pdf": None, "note": str(exc)}
        except SandboxBusy as exc:
            return {"pdf": None, "retry": str(exc)}

    return Archive(gateway.context, a, TsaClient(a.tsa_url, a.tsa_timeout_seconds), PackageStore(a.path), roots,
                   verify_pdf=gateway.signatures.verify, extend=extend if a.fetch_revocation else None,
                   pdf_check=check_ltv)


def handlers(gateway: Gateway) -> dict[str, BatchHandler]:
    portal = np.NationalPortalClient(gateway.settings.national_portal)
    jobs, delivery = gateway.payment_jobs, gateway.delivery_jobs
    return {
        np.SYNC_DOSSIER: portal.sync_dossier_many, np.PROGRESS: portal.report_progress_many,
        sms_email.SEND: gateway.notification_jobs.send_many,  # one read for the batch, each message on its own
        archiving.BUILD: gateway.archive.seal_many,  # one archive timestamp for the batch's packages
        # These partners take one request at a time: each job of a batch is its own call.
        **{kind: partial(one_by_one, handler) for kind, handler in {
            pay.INIT: jobs.init, pay.QUERY: jobs.query, pay.RECEIPT: jobs.receipt,
            postal.BOOK: delivery.book, postal.TRACK: delivery.track, postal.RETURNED: delivery.returned,
            signature.VERIFY_ATTACHMENT: gateway.attachment_jobs.verify_one,
            archiving.RENEW: gateway.renewal.renew_one,
            np.CHECK: gateway.drift.check_job,  # TraCuuHoSo takes one dossier a call
        }.items()},
    }


def dead_hooks(gateway: Gateway) -> dict[str, DeadHook]:
    return {pay.INIT: gateway.payment_jobs.init_dead, sms_email.SEND: gateway.notification_jobs.send_dead,
            postal.BOOK: gateway.delivery_jobs.book_dead}


def build_worker(gateway: Gateway) -> Worker:
    s = gateway.settings
    # `pending`: the question the sweeper asks first (store functions, each the scan's own condition), so that a
    # task with nothing to do costs a share of one query per tick. Queue sampling draws the console's chart by the
    # minute, unasked.
    periodic = [
        PeriodicTask("payment reconciliation", s.payment.scan_interval_seconds,
                     gateway.payment_jobs.schedule_reconciliation, lambda _conn, now: payments.check_pending(now)),
        PeriodicTask("delivery tracking", s.postal.scan_interval_seconds, gateway.delivery_jobs.schedule_polls,
                     lambda _conn, now: deliveries.poll_pending(now)),
        PeriodicTask("acknowledgment deadlines", s.sla.scan_interval_seconds, partial(sla.announce, gateway.context),
                     lambda _conn, now: dossiers.breach_pending(now)),
        PeriodicTask("audit sealing", s.audit.seal_interval_seconds,
                     partial(audit_chain.seal_all, gateway.engine, s.audit.key),
                     lambda _conn, _now: audit.unsealed_pending()),
        PeriodicTask("queue sampling", s.jobs.sample_every_seconds,
                     partial(queue_history.sample, gateway.engine, QUEUES)),
        PeriodicTask("job statistics", s.jobs.analyze_every_seconds,
                     partial(outbox_jobs.refresh_statistics, gateway.engine),
                     lambda conn, _now: outbox.statistics_stale(conn)),
        PeriodicTask("portal reconciliation", s.national_portal.reconcile.scan_interval_seconds,
                     gateway.drift.schedule, lambda _conn, now: portal_drift.checks_pending(now)),
    ]
    if s.archive.enabled:
        periodic.append(PeriodicTask("archive retries", s.archive.scan_interval_seconds,
                                     gateway.archive.schedule_unsealed,
                                     lambda _conn, _now: packages.unsealed_pending()))
        periodic.append(PeriodicTask("archive minimisation", s.archive.scan_interval_seconds,
                                     gateway.minimiser.minimise_due, gateway.minimiser.pending))
        periodic.append(PeriodicTask("archive renewals", s.archive.scan_interval_seconds, gateway.renewal.schedule,
                                     gateway.renewal.pending))
    if s.archive.enabled and s.archive.audit_anchor_minutes > 0:
        anchoring = AuditAnchoring(gateway.engine, gateway.archive.tsa, s.archive)
        periodic.append(PeriodicTask("audit anchoring", anchoring.cadence, anchoring.anchor_if_due,
                                     lambda _conn, _now: audit.anchor_pending()))
    if s.webhooks.url:
        pusher = WebhookPusher(gateway.engine, s.webhooks, s.jobs)
        periodic.append(PeriodicTask("webhook push", s.webhooks.push_interval_seconds, pusher.push,
                                     lambda _conn, _now: webhook_cursor.push_pending()))
    # Sealing yields to status, messages and payments: a peak defers it instead of slowing them.
    background = Background([archiving.QUEUE], YieldToOthers(gateway.engine, [archiving.QUEUE], s.archive.defer_backlog,
                                                              s.archive.defer_max_seconds).why_wait)
    return Worker(gateway.engine, gateway.broker, gateway.runner, s.jobs, QUEUES, periodic, background)
