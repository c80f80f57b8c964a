"""Telling citizens: notifications are rendered and stored in the transaction of the change that causes
them, with a job each; a worker sends them (SMS through the providers by priority, email over SMTP) and
records every attempt. A repeated cause (the same step again, a job run twice) never tells the citizen twice.
"""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway.adapters import sms_email
from gateway.adapters.base import AdapterError, PermanentError
from gateway.adapters.sms_email.base import Sms
from gateway.adapters.sms_email.failover import AllFailed, Attempt, SmsFailover, outcome_of
from gateway.adapters.sms_email.smtp_email import Attachment, Email, SmtpEmail
from gateway.config import NotificationSettings
from gateway.domain.notifications import Channel, NotificationIn, NotificationState, recipients
from gateway.domain.sms_text import measure, sms_text
from gateway.services.errors import NotFound, ServiceError
from gateway.services.notifications.outgoing import Outgoing
from gateway.services.notifications.templates import MessageTemplates, TemplateError
from gateway.services.unit_of_work import Context
from gateway.store import dossiers, outbox, server_clock
from gateway.store import notifications as store
from gateway.store.database import one_statement, reading
from gateway.store.one_trip import OneTrip, Part

log = logging.getLogger(__name__)

# Every value a template may ask for, so that a message about a step without a note still renders.
NO_EVENT = {"note": None, "due_at": None, "officer": None, "position": None, "department": None, "at": None}
DEFAULTS = {"event": NO_EVENT, "attachments": [], "amount": None, "pay_url": None, "items": [], "waybill": None,
            "cod_amount": 0}


class InvalidNotification(ServiceError):
    code = "invalid_notification"


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

    def store(self, conn: Connection, outgoing: Outgoing, *, max_attempts: int, now: datetime) -> list[tuple[int, str]]:
        """Insert the notifications whose cause was not told yet, each with its send job; the jobs to publish."""
        trip = OneTrip()
        jobs = self.add_to(trip, outgoing, max_attempts=max_attempts, now=now)
        trip.run(conn)
        return outbox.to_publish(jobs) if jobs is not None else []

    def add_to(self, trip: OneTrip, outgoing: Outgoing, *, max_attempts: int, now: datetime) -> Part | None:
        """store(), into the caller's one-trip write: the part holding the send jobs to publish after commit."""
        if not outgoing.rows:
            return None
        told = store.add_told(trip, outgoing.rows, outgoing.files)
        references = [r["reference"] for r in outgoing.rows]
        jobs = [(outbox.NewJob(sms_email.QUEUE, sms_email.SEND, f"notification:{ref}", {"reference": ref}), True)
                for ref in references]  # a new reference heads its own key: nothing to check
        return outbox.add_jobs(trip, jobs, now=now, max_attempts=max_attempts, checked=False,
                               after=(told, "reference", references))

    def for_applicant(self, dossier: dict[str, Any], template: str, *, cause: str, origin: str, now: datetime,
                      context: dict[str, Any] | None = None, files: list[dict[str, Any]] | None = None) -> Outgoing:
        """A dossier's applicant, told on every channel the dossier gives. `cause` makes it once only."""
        outgoing = Outgoing()
        if not self.settings.enabled:
            return outgoing
        full = {"dossier": dossier_context(dossier), **(context or {})}
        if files:
            full["attachments"] = [f["filename"] for f in files]
        for channel, to in recipients(dossier["data"]["applicant"]).items():
            try:
                row = self.message(channel, to, template, full, origin=origin, caller="gateway", now=now,
                                   dossier_code=dossier["code"], source_key=f"{cause}:{channel}")
            except TemplateError:  # a broken template must not lose the step it tells about
                log.exception("notification %s for %s not rendered", template, dossier["code"])
                continue
            outgoing.rows.append(row)
            if files and channel is Channel.EMAIL:
                outgoing.files[row["reference"]] = files
        return outgoing


def tell_applicant(ctx: Context, trip: OneTrip, dossier: dict[str, Any], template: str, *, now: datetime,
                   **kwargs: Any) -> Part | None:
    """Render into the caller's one-trip write; the part holding the send jobs to publish after commit (None when
    the gateway is built without notifications)."""
    if ctx.notifier is None:
        return None
    return ctx.notifier.add_to(trip, ctx.notifier.for_applicant(dossier, template, now=now, **kwargs),
                               max_attempts=ctx.jobs.max_attempts, now=now)


def send_now(ctx: Context, notifier: Notifier, body: NotificationIn, *, caller: str) -> dict[str, Any]:
    """POST /api/v1/notifications: render and queue one message; answer it as stored."""
    now = server_clock.now()
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
        jobs = notifier.store(conn, Outgoing([row]), max_attempts=ctx.jobs.max_attempts, now=now)
    ctx.publish_after_commit(jobs)
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

    def send(self, payload: dict[str, Any]) -> None:
        """One notification; a failure is raised."""
        if (error := self.send_many([payload])[0]) is not None:
            raise error

    def send_many(self, payloads: list[dict[str, Any]]) -> list[Exception | None]:
        """A batch of the worker's send jobs. One transaction reads the notifications and writes the send intent
        (sending_since) of those whose outcome may wait; each is sent in turn; the outcomes are recorded together,
        in one transaction after the last. An outcome waits only if sending the message again would not tell the
        citizen twice: an SMS the first provider took, which that provider recognises when asked again (a message
        in doubt asks it first; Viettel's DUPLICATE MESSAGE, VNPT's code 7: docs/partners/sms.md). Any other
        outcome (an email: SMTP has no idempotency; an SMS that failed or went through another provider) is
        recorded at once, with those waiting before it. So a worker dying mid-batch sends again to a citizen at
        most the message in hand, as with one job at a time (docs/notifications.md)."""
        references = [p["reference"] for p in payloads]
        with reading(self.ctx.engine) as conn:
            rows = {r["reference"]: r for r in store.by_references(conn, references)}
            files = store.attachments_of(conn, [r["id"] for r in rows.values() if r["channel"] == Channel.EMAIL])
        # The intent is needed only where an outcome may wait: an SMS with another message after it. A batch
        # of one writes as often as before (its outcome, recorded right after its send).
        if may_wait := [r["id"] for ref in references[:-1] if (r := rows.get(ref)) is not None
                        and r["channel"] == Channel.SMS and r["state"] == NotificationState.QUEUED]:
            with one_statement(self.ctx.engine) as conn:
                store.intend_to_send(conn, may_wait, now=server_clock.now())
        waiting: list[store.Told] = []
        results: list[Exception | None] = []
        for reference in references:
            row = rows.get(reference)
            try:
                if row is None:
                    raise PermanentError(f"no notification {reference}")
                told, error = self._send_one(row, files.get(row["id"], []))
            except AdapterError as exc:
                results.append(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug: this job retries (then a dead letter), the others go on
                log.exception("notification %s not sent", reference)
                results.append(exc)
                continue
            results.append(error)
            if told is not None:
                waiting.append(told)
                if not self._recognised_if_sent_again(row, told):
                    self._record(waiting)
                    waiting = []
        self._record(waiting)
        return results

    def _send_one(self, row: Any, files: list[Any]) -> tuple[store.Told | None, AdapterError | None]:
        """Send one notification: the outcome to record (None: nothing was sent) and the error, if it failed."""
        if row["state"] == NotificationState.SENT:
            return None, None  # a job run twice; a failed one revived by an operator is sent again
        if any(f["dropped_at"] for f in files):  # revived after data minimisation: never mail empty files
            raise PermanentError(f"the result documents of {row['reference']} are only in the archive now; "
                                 "send a new email with them (GET /api/v1/notifications/<id>/attachments/<n>)")
        if in_doubt := row["sending_since"] is not None:
            log.warning("notification %s in doubt: its worker stopped after the send intent of %s; sent again",
                        row["reference"], row["sending_since"].isoformat())
        try:
            provider, message_id, tried = self._deliver(row, files, in_doubt=in_doubt)
        except AllFailed as exc:
            return self._told(row, exc.attempts, last_error=str(exc)), exc
        except AdapterError as exc:  # email: one server, one attempt
            return self._told(row, [Attempt(self.email.name, outcome_of(exc), str(exc))], last_error=str(exc)), exc
        return self._told(row, tried, state=NotificationState.SENT.value, provider=provider,
                          provider_message_id=message_id, sent_at=server_clock.now(), last_error=None), None

    def _deliver(self, row: Any, files: list[Any], *, in_doubt: bool) -> tuple[str, str, list[Attempt]]:
        if row["channel"] == Channel.SMS:
            sms = Sms(row["reference"], row["recipient"], row["body"], unicode=row["encoding"] == "ucs2")
            sent = self.sms.send(sms, in_doubt=in_doubt)
            return sent.provider, sent.message_id, sent.attempts
        email = Email(row["reference"], row["recipient"], row["subject"] or "", row["body"],
                      [Attachment(f["filename"], f["content_type"], f["content"]) for f in files])
        return self.email.name, self.email.send(email), [Attempt(self.email.name, "sent")]

    @staticmethod
    def _told(row: Any, tried: list[Attempt], **changes: Any) -> store.Told:
        kept = {k: row[k] for k in ("state", "provider", "provider_message_id", "sent_at", "last_error")}
        return store.Told(row["id"], row["state"], [
            {"provider": a.provider, "outcome": a.outcome, "detail": a.detail or None} for a in tried],
            kept | changes)

    def _recognised_if_sent_again(self, row: Any, told: store.Told) -> bool:
        """Sent again after a crash, would this message reach the citizen once? Only an SMS the first provider took
        at the first try: asked again first, it answers "duplicate"."""
        return (row["channel"] == Channel.SMS and told.changes["state"] == NotificationState.SENT
                and [a["provider"] for a in told.tried] == [self.sms.first()])

    def _record(self, outcomes: list[store.Told]) -> None:
        if outcomes:
            with one_statement(self.ctx.engine) as conn:
                store.record_many(conn, outcomes, now=server_clock.now())

    def send_dead(self, conn: Connection, payload: dict[str, Any], error: str) -> None:
        """Out of attempts, or refused for good: the notification failed (an operator can revive its job)."""
        store.mark(conn, payload["reference"], now=server_clock.now(), expected_state=NotificationState.QUEUED,
                   state=NotificationState.FAILED.value, last_error=error)



def of_dossier(ctx: Context, code: str) -> list[Any]:
    """What the applicant of a dossier has been told, oldest first."""
    with ctx.engine.connect() as conn:
        return store.of_dossier(conn, code)
