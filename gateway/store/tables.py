"""The database schema (SQLAlchemy Core). Alembic migrations in store/migrations mirror it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect

metadata = MetaData()


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL and on SQLite (which has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BigInteger ids become plain INTEGER on SQLite so that they autoincrement there too.
Id = BigInteger().with_variant(Integer(), "sqlite")

dossiers = Table(
    "dossiers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("procedure_code", String(64), nullable=False),
    Column("procedure_name", String(500), nullable=False),
    Column("level", String(16), nullable=False),
    Column("channel", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("applicant_name", String(500), nullable=False),
    Column("id_number", String(16), nullable=False, index=True),
    Column("fingerprint", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime()),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("fees_paid_online_at", UtcDateTime()),  # the national portal is told fees were paid online
    # The 8-working-hour rule: when an officer must have acted on a new dossier; when its breach was announced.
    Column("ack_due_at", UtcDateTime()),
    Column("sla_breach_announced_at", UtcDateTime()),
)
# Only new dossiers can breach, and each only once: the scan reads this small index, not the table.
_UNANNOUNCED = text("status = 1 AND sla_breach_announced_at IS NULL")
Index("ix_dossiers_ack_due", dossiers.c.ack_due_at, postgresql_where=_UNANNOUNCED, sqlite_where=_UNANNOUNCED)

dossier_events = Table(
    "dossier_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event_id", String(100)),
    Column("fingerprint", String(64), nullable=False),
    Column("from_status", Integer, nullable=False),
    Column("status", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("dossier_id", "seq", name="uq_dossier_events_seq"),
    UniqueConstraint("dossier_id", "event_id", name="uq_dossier_events_event_id"),
)

feed_items = Table(
    "feed_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),  # the cursor
    Column("type", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    # The cursor: numbered by the feed's readers, in the order items became visible (store/feed.place); NULL
    # until the next reading after the item's commit.
    Column("position", BigInteger),
    Index("ux_feed_items_position", "position", unique=True),
)
_UNPLACED = text("position IS NULL")
Index("ix_feed_items_unplaced", feed_items.c.id, postgresql_where=_UNPLACED, sqlite_where=_UNPLACED)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),  # one queue per adapter
    Column("kind", String(64), nullable=False),
    Column("ordering_key", String(128), nullable=False),  # jobs with one key run one after another
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # pending, in_flight, done, dead, discarded
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime()),
    # ready: this job heads its ordering key (every earlier job of the key is finished), so it may be
    # claimed when due. Kept up to date on enqueue and when the job before it finishes.
    Column("ready", Boolean, nullable=False, default=False, server_default=false()),
    Column("locked_until", UtcDateTime()),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("request_id", String(64)),  # the request that queued it: its log lines carry the same id
    Index("ix_jobs_state_next", "state", "next_attempt_at"),
    Index("ix_jobs_order", "queue", "ordering_key", "id"),
)

# Partial indexes keep the hot queries (claim the heads, sweep) proportional to the unfinished jobs,
# not to the ever-growing history of finished ones.
_READY = text("state = 'pending' AND ready")
_UNFINISHED = text("state IN ('pending', 'in_flight', 'dead')")
Index("ix_jobs_ready", jobs.c.queue, jobs.c.next_attempt_at, jobs.c.id, postgresql_where=_READY, sqlite_where=_READY)
Index("ix_jobs_unfinished", jobs.c.queue, jobs.c.ordering_key, jobs.c.id,
      postgresql_where=_UNFINISHED, sqlite_where=_UNFINISHED)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("detail", JSON, nullable=False),
    # The hash chain, added by the sealer after commit (audit_chain.py): position, the previous record's
    # hash, this record's keyed hash over its content and the previous hash. NULL: not sealed yet.
    Column("seq", BigInteger),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
    UniqueConstraint("seq", name="uq_audit_log_seq"),
    Index("ix_audit_log_actor_at", "actor", "at"),  # the console's adapter health reads recent worker calls
    # A dossier's records, for its archive package: without it each package read the whole log (a sequential
    # scan per finished dossier, growing with the log).
    Index("ix_audit_log_subject", "subject", "id"),
)
_UNSEALED = text("seq IS NULL")
Index("ix_audit_log_unsealed", audit_log.c.id, postgresql_where=_UNSEALED, sqlite_where=_UNSEALED)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # The public id: MaThamChieu at the national platform, vnp_TxnRef at VNPay.
    Column("reference", String(32), nullable=False, unique=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False, index=True),
    Column("dossier_code", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # see domain/payment.py
    Column("amount", BigInteger, nullable=False),  # whole VND, the sum of the items
    Column("items", JSON, nullable=False),
    Column("description", String(500), nullable=False),
    Column("payer_ip", String(64), nullable=False),
    Column("pay_url", Text),
    Column("origin", String(32), nullable=False),  # "request", or "step" for a status-6 step with fees
    Column("caller", String(100), nullable=False),
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(64)),
    Column("transaction_id", String(100)),  # the provider's
    Column("paid_at", UtcDateTime()),
    Column("settled_by", String(32)),  # callback or reconciliation
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("next_check_at", UtcDateTime()),  # when reconciliation asks the provider next (pending only)
    Column("flag", String(300)),  # why an operator should look at it; NULL when nothing is odd
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("caller", "idempotency_key", name="uq_payments_idempotency"),
)
_PENDING = text("state = 'pending'")
Index("ix_payments_to_check", payments.c.next_check_at, postgresql_where=_PENDING, sqlite_where=_PENDING)

payment_receipts = Table(
    "payment_receipts",
    metadata,
    Column("payment_id", Id, ForeignKey("payments.id"), primary_key=True),
    Column("pdf", LargeBinary, nullable=False),
    Column("fetched_at", UtcDateTime(), nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reference", String(32), nullable=False, unique=True),  # the public id
    Column("dossier_code", String(64), index=True),
    Column("channel", String(8), nullable=False),  # sms or email
    Column("recipient", String(254), nullable=False),  # 84xxxxxxxxx or an address
    Column("template", String(64), nullable=False),
    Column("subject", String(500)),
    Column("body", Text, nullable=False),  # as sent
    Column("encoding", String(8)),  # SMS: gsm7 or ucs2
    Column("segments", Integer),  # SMS: parts billed
    Column("state", String(16), nullable=False),  # queued, sent, failed
    Column("provider", String(32)),  # who delivered it
    Column("provider_message_id", String(100)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("origin", String(32), nullable=False),  # filing, step, payment, delivery, request
    # One notification per cause and channel: a repeated step or job does not tell the citizen twice.
    Column("source_key", String(200), unique=True),
    Column("caller", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    # The send intent: set for a worker's batch before its first call, cleared with the message's outcome. Still
    # set when a worker takes the message: in doubt (docs/notifications.md, "A worker stopping mid-batch").
    Column("sending_since", UtcDateTime()),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notification_id", Id, ForeignKey("notifications.id"), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),  # sent, retryable, throttled, permanent, duplicate, skipped
    Column("detail", Text),
)

notification_attachments = Table(
    "notification_attachments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notification_id", Id, ForeignKey("notifications.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("content", LargeBinary, nullable=False),  # empty once dropped (dropped_at): the archive keeps it
    Column("sha256", String(64)),  # of the content; kept when the body is dropped
    Column("size", BigInteger),
    Column("dropped_at", UtcDateTime()),  # data minimisation (docs/archive.md): served from the archive since
    Column("archive_path", String(500)),  # the file's member name in the dossier's archive package
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reference", String(32), nullable=False, unique=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False, unique=True),  # one booking a dossier
    Column("dossier_code", String(64), nullable=False),  # OrderNumber at the post
    Column("provider", String(32), nullable=False),
    Column("state", String(24), nullable=False),  # see domain/delivery.py
    Column("waybill", String(64)),  # ItemCode
    Column("cod_amount", BigInteger, nullable=False),
    Column("receiver", JSON, nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("status_code", String(16)),  # the post's last applied tracking code
    Column("status_message", String(300)),
    Column("status_at", UtcDateTime()),
    Column("next_poll_at", UtcDateTime()),  # open deliveries only
    Column("last_error", Text),
    Column("caller", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime()),
)
_POLLED = text("next_poll_at IS NOT NULL")
Index("ix_deliveries_to_poll", deliveries.c.next_poll_at, postgresql_where=_POLLED, sqlite_where=_POLLED)

delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("status_code", String(16), nullable=False),
    Column("status_message", String(300)),
    Column("at", UtcDateTime(), nullable=False),  # when the post says it happened
    Column("via", String(16), nullable=False),  # callback, poll, booking
    Column("applied", Boolean, nullable=False),  # False: older than what we had (out of order), kept for the record
    Column("received_at", UtcDateTime(), nullable=False),
)
# One row per update, however often it comes (a callback sent again, a poll seeing it again): see add_event.
Index("uq_delivery_events_update", delivery_events.c.delivery_id, delivery_events.c.status_code,
      delivery_events.c.at, unique=True)

attachment_signatures = Table(
    "attachment_signatures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False),
    Column("attachment_id", String(100), nullable=False),
    Column("name", String(500), nullable=False),
    Column("indication", String(32), nullable=False),  # ETSI indication, or UNREADABLE
    Column("sub_indication", String(64)),
    Column("summary_vi", Text, nullable=False),
    Column("summary_en", Text, nullable=False),
    Column("signature_count", Integer, nullable=False),
    Column("report", JSON),  # the full report; None when the file could not be read
    Column("verified_at", UtcDateTime(), nullable=False),
    UniqueConstraint("dossier_id", "attachment_id"),  # one verdict per attachment: a repeated job changes nothing
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_sha256", String(64), nullable=False, unique=True),  # the key itself is never stored
    Column("roles", JSON, nullable=False),
    Column("rate_per_minute", Integer),  # None: the default of auth.rate_limit_per_minute
    Column("created_by", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
)

webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row
    Column("cursor", BigInteger, nullable=False),  # the last feed item the receiver acknowledged
    Column("pending_through", BigInteger),  # a batch sent without an answer: resent as it was, same id
    Column("attempts", Integer, nullable=False),  # failed pushes in a row
    Column("next_attempt_at", UtcDateTime()),
    Column("leased_until", UtcDateTime()),  # a pusher at work
    Column("last_error", Text),
    Column("updated_at", UtcDateTime(), nullable=False),
)

archive_packages = Table(
    "archive_packages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False, unique=True),  # one package a dossier
    Column("dossier_code", String(64), nullable=False, unique=True),
    Column("state", String(16), nullable=False),  # pending, sealed, failed (waiting to retry; see domain/archive.py)
    Column("final_status", Integer, nullable=False),
    Column("final_at", UtcDateTime(), nullable=False),  # when the dossier reached its final status
    Column("attempts", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=0),  # the newest package file; renewal adds one
    Column("path", String(500)),  # inside archive.folder
    Column("sha256", String(64)),  # of the newest package file
    Column("size", BigInteger),
    Column("dossier_bytes", BigInteger),  # what the dossier itself holds: the figure the package size compares to
    Column("retention_years", Integer),  # 0: permanent
    Column("retain_until", UtcDateTime()),
    Column("timestamp_at", UtcDateTime()),  # the newest archive timestamp's time
    Column("tsa_not_after", UtcDateTime()),  # when its TSA certificate ends: renew before
    Column("timestamp_digest", String(16)),
    Column("timestamps", Integer, nullable=False, default=0),  # tokens in the chain
    Column("sealed_at", UtcDateTime()),
    Column("verified_at", UtcDateTime()),  # checked after writing: only then may the database forget bodies
    Column("minimised_at", UtcDateTime()),  # attachment and result bodies dropped from the database
    Column("renew_after", UtcDateTime()),  # a renewal that could not help (the TSA ends as soon) waits until then
    Column("flag", String(300)),  # why an operator should look (the TSA or OCSP is down, a PDF not extended)
    Column("last_error", Text),
    Column("notes", JSON),  # what sealing could not do for some files (a broken PDF), as the package says
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_archive_packages_state", "state"),
)

audit_anchors = Table(
    "audit_anchors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),  # the chain's head when anchored
    Column("hash", String(64), nullable=False),
    Column("token", LargeBinary, nullable=False),  # RFC 3161 token over the head (domain/archive.py anchor_imprint)
    Column("timestamp_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ux_audit_anchors_seq", "seq", unique=True),  # one anchor per head, however many workers anchor
)

# The backlog and dead letters of each queue, sampled by the workers' sweepers (jobs.sample_every_seconds),
# so that the console can draw the last hour without reading the jobs' history.
queue_samples = Table(
    "queue_samples",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("backlog", Integer, nullable=False),  # pending + in flight
    Column("dead", Integer, nullable=False),
    Index("ix_queue_samples_at", "at"),
)

# Reconciliation with the national portal (services/portal_drift): each dossier's turn to be read back there.
portal_checks = Table(
    "portal_checks",
    metadata,
    Column("dossier_id", Id, ForeignKey("dossiers.id"), primary_key=True, autoincrement=False),
    Column("dossier_code", String(64), nullable=False),
    Column("enrolled_at", UtcDateTime(), nullable=False),
    Column("next_check_at", UtcDateTime()),  # NULL: out of scope (finished long enough ago)
    Column("checked_at", UtcDateTime()),  # the last look that got an answer
    Column("outcome", String(16)),  # clean, a drift kind, unreadable (the answer was not trusted), busy
    Column("detail", Text),  # why the answer was not trusted
    Column("checks", Integer, nullable=False, default=0),
    Column("accepted", JSON),  # signatures of differences an operator took as the portal's version
)
# The scan reads the due rows in turn; coverage and the oldest check read the in-scope rows by their last check.
_IN_SCOPE = text("next_check_at IS NOT NULL")
_UNCHECKED = text("next_check_at IS NOT NULL AND checked_at IS NULL")
_UNREADABLE = text("outcome = 'unreadable'")
Index("ix_portal_checks_due", portal_checks.c.next_check_at, postgresql_where=_IN_SCOPE, sqlite_where=_IN_SCOPE)
Index("ix_portal_checks_checked", portal_checks.c.checked_at, postgresql_where=_IN_SCOPE, sqlite_where=_IN_SCOPE)
Index("ix_portal_checks_unchecked", portal_checks.c.enrolled_at, postgresql_where=_UNCHECKED,
      sqlite_where=_UNCHECKED)
Index("ix_portal_checks_unreadable", portal_checks.c.dossier_id, postgresql_where=_UNREADABLE,
      sqlite_where=_UNREADABLE)

# What a look found: one open finding a dossier at most (repairing, or waiting for an operator).
portal_findings = Table(
    "portal_findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dossier_id", Id, ForeignKey("dossiers.id"), nullable=False),
    Column("dossier_code", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # domain/portal_drift.py Kind
    Column("state", String(16), nullable=False),  # domain/portal_drift.py State
    Column("differences", JSON, nullable=False),  # [{field, gateway, portal, kind}], side by side
    Column("portal", JSON),  # the portal's records as read (bounded)
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("repairs", Integer, nullable=False, default=0),  # repairs queued for it
    Column("repair_jobs", JSON),  # the jobs of the newest repair
    Column("note", String(300)),
    Column("resolved_at", UtcDateTime()),
    Column("resolved_by", String(100)),
)
_OPEN = text("state IN ('repairing', 'operator')")
Index("ux_portal_findings_open", portal_findings.c.dossier_id, unique=True, postgresql_where=_OPEN,
      sqlite_where=_OPEN)
Index("ix_portal_findings_dossier", portal_findings.c.dossier_id)

# The look-up budget all workers share (one row): tokens refill at national_portal.reconcile.rate_per_second.
portal_reconcile = Table(
    "portal_reconcile",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tokens", Float, nullable=False),
    Column("refilled_at", UtcDateTime(), nullable=False),
)
