"""Telling citizens: notifications are rendered and stored in the transaction of the change that causes
them, with a job each; a worker sends them (SMS through the providers by priority, email over SMTP) and
records every attempt. A repeated cause (the same step again, a job run twice) never tells the citizen twice.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from gateway.adapters import sms_email
from gateway.adapters.base import AdapterError, PermanentError, one_by_one
from gateway.adapters.sms_email.failover import AllFailed, SmsFailover
from gateway.adapters.sms_email.smtp_email import Attachment, Email, SmtpEmail
from gateway.config import NotificationSettings
from gateway.domain.notifications import Channel, NotificationIn, NotificationState, recipients
from gateway.domain.sms_text import measure, sms_text
from gateway.store import dossiers, outbox
from gateway.store import notifications as store

from .errors import NotFound, ServiceError
from .message_templates import MessageTemplates, TemplateError
from .unit_of_work import Context

log = logging.getLogger(__name__)

# Every value a template may ask for, so that a message about a step without a note still renders.
NO_EVENT = {"note": None, "due_at": None, "officer": None, "position": None, "department": None, "at": None}
DEFAULTS = {"event": NO_EVENT, "attachments": [], "amount": None, "pay_url": None, "items": [], "waybill": None,
            "cod_amount": 0}


class InvalidNotification(ServiceError):
    code = "invalid_notification"


@dataclass
class Planned:
    """Notifications stored in a transaction: the jobs to publish once it commits."""

    jobs: list[tuple[int, str]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


def dossier_context(row: dict[str, Any]) -> dict[str, Any]:
    data = row["data"]
    return {"code": row["code"], "procedure_name": data.get("procedure_name"),
            "applicant_name": data["applicant"].get("full_name"), "delivery_method": data.get("delivery_method"),
            "status": row.get("status")}


class Notifier:
    """Renders and stores notifications (with their jobs) inside the caller's transaction."""

    def __init__(self, settings: NotificationSettings, templates: MessageTemplates | None = None) -> None:
        self.settings = settings
        self.templates = templates or MessageTemplates(settings.templates_dir or None, lookup_url=settings.lookup_url)

    def message(self, channel: Channel, to: str, template: str, context: dict[str, Any], *, origin: str,
                caller: str, now: datetime, dossier_code: str | None, source_key: str | None) -> dict[str, Any]:
        """The row of one notification, rendered; TemplateError if the template cannot be filled."""
        rendered = self.templates.render(template, channel, {**DEFAULTS, **context})
        row = {"reference": "TB" + secrets.token_hex(8).upper(), "dossier_code": dossier_code, "channel": str(channel),
               "recipient": to, "template": template, "subject": rendered.subject, "body": rendered.body,
               "encoding": None, "segments": None, "state": NotificationState.QUEUED.value, "attempts": 0,
               "origin": origin, "source_key": source_key, "caller": caller, "created_at": now, "updated_at": now,
               "provider": None, "provider_message_id": None, "last_error": None, "sent_at": None}
        if channel is Channel.SMS:
            row["body"] = sms_text(rendered.body, diacritics=self.settings.sms.diacritics)
            length = measure(row["body"])
            row.update(encoding=str(length.encoding), segments=length.segments)
        return row

    def store(self, conn: Connection, ctx: Context, rows: list[dict[str, Any]], *, now: datetime,
              files: dict[str, list[dict[str, Any]]] | None = None) -> Planned:
        """Insert the rows whose cause was not notified yet, each with its send job."""
        taken = store.existing_keys(conn, [r["source_key"] for r in rows if r["source_key"]])
        rows = [r for r in rows if r["source_key"] not in taken]
        planned = Planned()
        if not rows:
            return planned
        ids = store.insert_many(conn, rows)
        for notification_id, row in zip(ids, rows, strict=True):
            if files and row["channel"] == Channel.EMAIL:
                store.add_attachments(conn, notification_id, files.get(row["reference"], files.get("*", [])))
        jobs = [(outbox.NewJob(sms_email.QUEUE, sms_email.SEND, f"notification:{r['reference']}",
                               {"reference": r["reference"]}), True) for r in rows]
        job_ids = outbox.enqueue_many(conn, jobs, now=now, max_attempts=ctx.jobs.max_attempts)
        planned.jobs = [(job_id, sms_email.QUEUE) for job_id in job_ids]
        planned.references = [r["reference"] for r in rows]
        return planned

    def tell_applicant(self, conn: Connection, ctx: Context, dossier: dict[str, Any], template: str, *, cause: str,
                       origin: str, now: datetime, context: dict[str, Any] | None = None,
                       files: list[dict[str, Any]] | None = None) -> Planned:
        """Tell a dossier's applicant on every channel the dossier gives. `cause` makes it once only."""
        if not self.settings.enabled:
            return Planned()
        full = {"dossier": dossier_context(dossier), **(context or {})}
        if files:
            full["attachments"] = [f["filename"] for f in files]
        rows = []
        for channel, to in recipients(dossier["data"]["applicant"]).items():
            try:
                rows.append(self.message(channel, to, template, full, origin=origin, caller="gateway", now=now,
                                         dossier_code=dossier["code"], source_key=f"{cause}:{channel}"))
            except TemplateError:  # a broken template must not lose the step it tells about
                log.exception("notification %s for %s not rendered", template, dossier["code"])
        return self.store(conn, ctx, rows, now=now, files={"*": files} if files else None)


def tell_applicant(ctx: Context, conn: Connection, dossier: dict[str, Any], template: str, **kwargs: Any,
                   ) -> list[tuple[int, str]]:
    """The jobs to publish after commit; none when the gateway is built without notifications."""
    if ctx.notifier is None:
        return []
    return ctx.notifier.tell_applicant(conn, ctx, dossier, template, **kwargs).jobs


def send_now(ctx: Context, notifier: Notifier, body: NotificationIn, *, caller: str) -> dict[str, Any]:
    """POST /api/v1/notifications: render and queue one message; answer it as stored."""
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        context = dict(body.params)
        if body.dossier_code is not None:
            dossier = dossiers.get(conn, body.dossier_code)
            if dossier is None:
                raise NotFound(f"no dossier {body.dossier_code}")
            context = {"dossier": dossier_context(dict(dossier)), **context}
        try:
            row = notifier.message(body.channel, body.to, body.template, context, origin="request", caller=caller,
                                   now=now, dossier_code=body.dossier_code, source_key=None)
        except TemplateError as exc:
            raise InvalidNotification(str(exc)) from None
        planned = notifier.store(conn, ctx, [row], now=now)
    ctx.publish_after_commit(planned.jobs)
    return row


def get(ctx: Context, reference: str) -> tuple[Any, list[Any], list[Any]]:
    with ctx.engine.connect() as conn:
        row = store.by_reference(conn, reference)
        if row is None:
            raise NotFound(f"no notification {reference}")
        return row, store.attempts(conn, row["id"]), store.attachments(conn, row["id"])


def result_files(results: list[Any]) -> list[dict[str, Any]]:
    """The result documents of a step, as email attachments."""
    return [{"filename": r.name, "content_type": r.content_type, "content": base64.b64decode(r.content_base64)}
            for r in results]


class NotificationJobs:
    """The worker's side: send one notification and record what each provider said."""

    def __init__(self, ctx: Context, sms: SmsFailover, email: SmtpEmail) -> None:
        self.ctx = ctx
        self.sms = sms
        self.email = email

    def send_many(self, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
        return one_by_one(self.send, payloads)

    def send(self, payload: dict[str, Any]) -> None:
        with self.ctx.engine.connect() as conn:
            row = store.by_reference(conn, payload["reference"])
            if row is None:
                raise PermanentError(f"no notification {payload['reference']}")
            files = store.attachments(conn, row["id"]) if row["channel"] == Channel.EMAIL else []
        if row["state"] == NotificationState.SENT:
            return  # a job run twice; a failed one revived by an operator is sent again
        try:
            provider, message_id, tried = self._deliver(row, files)
        except AllFailed as exc:
            self._record(row, exc.attempts, last_error=str(exc))
            raise
        except AdapterError as exc:
            self._record(row, [{"provider": "smtp", "outcome": _kind(exc), "detail": str(exc)}], last_error=str(exc))
            raise
        self._record(row, tried, state=NotificationState.SENT.value, provider=provider,
                     provider_message_id=message_id, sent_at=datetime.now(UTC), last_error=None)

    def _deliver(self, row: Any, files: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
        if row["channel"] == Channel.SMS:
            sent = self.sms.send(sms_email.base.Sms(row["reference"], row["recipient"], row["body"],
                                                    unicode=row["encoding"] == "ucs2"))
            tried = [{"provider": a.provider, "outcome": a.outcome, "detail": a.detail or None} for a in sent.attempts]
            return sent.provider, sent.message_id, tried
        email = Email(row["reference"], row["recipient"], row["subject"] or "", row["body"],
                      [Attachment(f["filename"], f["content_type"], f["content"]) for f in files])
        message_id = self.email.send(email)
        return self.email.name, message_id, [{"provider": self.email.name, "outcome": "sent", "detail": None}]

    def _record(self, row: Any, tried: list[Any], **changes: Any) -> None:
        if tried and not isinstance(tried[0], dict):
            tried = [{"provider": a.provider, "outcome": a.outcome, "detail": a.detail or None} for a in tried]
        with self.ctx.engine.begin() as conn:
            store.record(conn, row["id"], tried, now=datetime.now(UTC), expected_state=row["state"], **changes)

    def send_dead(self, conn: Connection, payload: dict[str, Any], error: str) -> None:
        """Out of attempts, or refused for good: the notification failed (an operator can revive its job)."""
        store.mark(conn, payload["reference"], now=datetime.now(UTC), expected_state=NotificationState.QUEUED,
                   state=NotificationState.FAILED.value, last_error=error)


def _kind(exc: AdapterError) -> str:
    return "retryable" if exc.retryable else ("rejected" if isinstance(exc, sms_email.base.RejectedError)
                                              else "refusing")
