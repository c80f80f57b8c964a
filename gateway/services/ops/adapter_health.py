"""How the partners answered lately, for the console: outbound calls per queue, SMS sends per provider."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from gateway.adapters.sms_email.smtp_email import SmtpEmail
from gateway.services.unit_of_work import Context
from gateway.store import audit, tallies
from gateway.store.tables import notification_attempts

WINDOW = timedelta(minutes=15)
# What each SMS outcome counts as; any other outcome is a failure.
SMS_SLOTS = {"sent": "sent", "duplicate": "sent", "skipped": "skipped"}


def outbound_calls(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """Per queue, the outbound calls of the last 15 minutes (from the audit of each job outcome)."""
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    with ctx.engine.connect() as conn:
        outcomes = audit.calls_since(conn, now - WINDOW)
    for queue, action, count in outcomes:
        calls[queue] += count
        errors[queue] += count if action != "job.done" else 0
    return [{"queue": q, "calls": calls[q], "errors": errors[q]} for q in sorted(calls)]


def sms_providers(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """Per SMS provider, the sends of the last 15 minutes: sent, failed, skipped."""
    attempts = notification_attempts.c
    with ctx.engine.connect() as conn:
        rows = tallies.count_by(conn, notification_attempts, "provider", "outcome",  # SMS only: not the SMTP server
                                where=(attempts.at >= now - WINDOW) & (attempts.provider != SmtpEmail.name))
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        slot = SMS_SLOTS.get(r["outcome"], "failed")
        by.setdefault(r["provider"], {"sent": 0, "failed": 0, "skipped": 0})[slot] += r["count"]
    return [{"provider": p, **v} for p, v in sorted(by.items())]
