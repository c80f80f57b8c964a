"""The operators' console at /ops/: plain server-rendered HTML, no JavaScript build step.

An operator signs in with an API key holding the `ops` role; the session cookie keeps only the key's
hash (so a revoked key ends the session too), is HttpOnly and SameSite=Strict, and every form carries a
per-session token against cross-site posts. Each action goes through the same services as /ops and the
CLI, and is audited under the key's name.
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, session, url_for

from gateway.adapters import archive as archiving
from gateway.adapters.sms_email.smtp_email import SmtpEmail
from gateway.domain import archive as archive_rules
from gateway.domain.codes import STATUS_LABELS_VI, Status
from gateway.domain.dossier import VN_TZ
from gateway.services import dead_letters, queue_history, sla
from gateway.services.api_keys import digest
from gateway.services.errors import NotFound
from gateway.store import archive as packages
from gateway.store import audit, outbox, tallies
from gateway.store.tables import jobs, notification_attempts

from . import queue_chart
from .errors import ApiError

bp = Blueprint("console", __name__, url_prefix="/ops")

STATES = (outbox.PENDING, outbox.IN_FLIGHT, outbox.DONE, outbox.DEAD, outbox.DISCARDED)
HEALTH_WINDOW = timedelta(minutes=15)


def _gateway() -> Any:
    return current_app.config["GATEWAY"]


def _operator() -> str | None:
    """The name of the signed-in ops key, if it is still valid."""
    hashed = session.get("key_sha256")
    caller = _gateway().keys.caller_by_digest(hashed) if hashed else None
    return caller.name if caller is not None and "ops" in caller.roles else None


def signed_in(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if (name := _operator()) is None:
            session.clear()
            return redirect(url_for("console.login"))
        if request.method == "POST" and not hmac.compare_digest(request.form.get("csrf", ""),
                                                                session.get("csrf", "")):
            raise ApiError(403, "bad_form_token", "the form is stale or not ours: reload the page")
        return view(name, *args, **kwargs)

    return wrapper


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with an ops API key."""
    if request.method == "POST":
        key = request.form.get("key", "").strip()
        caller = _gateway().keys.caller(key) if key else None
        if caller is None or "ops" not in caller.roles:
            flash("Khóa không hợp lệ hoặc không có vai trò ops.", "bad")
            return render_template("console/login.html", caller=None), 401
        session.clear()
        session["key_sha256"] = digest(key)
        session["csrf"] = secrets.token_urlsafe(24)
        return redirect(url_for("console.dashboard"))
    return render_template("console/login.html", caller=None)


@bp.post("/logout")
@signed_in
def logout(_name: str) -> Response:
    session.clear()
    return redirect(url_for("console.login"))


def _health(conn: Any, now: datetime) -> list[dict[str, Any]]:
    """Per queue, the outbound calls of the last 15 minutes (from the audit of each job outcome)."""
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for queue, action, count in audit.calls_since(conn, now - HEALTH_WINDOW):
        calls[queue] += count
        errors[queue] += count if action != "job.done" else 0
    return [{"queue": q, "calls": calls[q], "errors": errors[q]} for q in sorted(calls)]


def _sms(conn: Any, now: datetime) -> list[dict[str, Any]]:
    attempts = notification_attempts.c
    rows = tallies.count_by(conn, notification_attempts, "provider", "outcome",  # SMS only: not the SMTP server
                            where=(attempts.at >= now - HEALTH_WINDOW) & (attempts.provider != SmtpEmail.name))
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        slot = {"sent": "sent", "duplicate": "sent", "skipped": "skipped"}.get(r["outcome"], "failed")
        by.setdefault(r["provider"], {"sent": 0, "failed": 0, "skipped": 0})[slot] += r["count"]
    return [{"provider": p, **v} for p, v in sorted(by.items())]


@bp.get("/")
@signed_in
def dashboard(name: str) -> str:
    """Queues, adapter health, dead letters with their buttons, SLA breaches, trust roots."""
    gateway = _gateway()
    now = datetime.now(UTC)
    with gateway.engine.connect() as conn:
        queues: dict[str, dict[str, int]] = {}
        for row in outbox.counts(conn):
            queues.setdefault(row["queue"], {})[row["state"]] = row["count"]
        health, sms = _health(conn, now), _sms(conn, now)
        code = request.args.get("code", "").strip()[:64]
        traced = outbox.for_key(conn, code) if code else []
        # Counted in the database: the list below shows only the first 200.
        dead_kinds = {(r["queue"], r["kind"]): r["count"]
                      for r in tallies.count_by(conn, jobs, "queue", "kind", where=jobs.c.state == outbox.DEAD)}
    dead = dead_letters.list_dead(gateway.context, limit=200)
    chart = queue_chart.render(queue_history.last_hour(gateway.engine, now=now))
    return render_template("console/dashboard.html", caller=name, csrf=session["csrf"], states=STATES,
                           queues=queues, health=health, sms=sms, dead=dead, dead_kinds=dead_kinds,
                           breaches=sla.breaches(gateway.context, limit=100), roots=gateway.signatures.trust.roots,
                           code=code, traced=traced, chart=chart)


def _act(action: str, job_id: int, name: str) -> None:
    try:
        getattr(dead_letters, action)(_gateway().context, job_id, actor=f"console:{name}")
        flash(f"Thư chết #{job_id}: {'đã gửi lại' if action == 'retry' else 'đã bỏ'}.", "ok")
    except NotFound:
        flash(f"Thư chết #{job_id} không còn.", "bad")


@bp.post("/console/dead-letters/<int:job_id>/retry")
@signed_in
def retry(name: str, job_id: int) -> Response:
    _act("retry", job_id, name)
    return redirect(url_for("console.dashboard") + "#dead-letters")


@bp.post("/console/dead-letters/<int:job_id>/discard")
@signed_in
def discard(name: str, job_id: int) -> Response:
    _act("discard", job_id, name)
    return redirect(url_for("console.dashboard") + "#dead-letters")


def _all_of_kind(action: str, name: str) -> Response:
    queue, kind = request.form.get("queue", ""), request.form.get("kind", "")
    ctx = _gateway().context
    dead = dead_letters.list_dead(ctx, queue=queue, kind=kind, limit=10_000)
    done = dead_letters.settle_each(ctx, action, [job["id"] for job in dead], actor=f"console:{name}")
    verb = "gửi lại" if action == "retry" else "bỏ"
    flash(f"{queue} / {kind}: đã {verb} {done} thư chết.", "ok" if done else "bad")
    return redirect(url_for("console.dashboard") + "#dead-letters")


@bp.post("/console/dead-letters/retry-kind")
@signed_in
def retry_kind(name: str) -> Response:
    return _all_of_kind("retry", name)


@bp.post("/console/dead-letters/discard-kind")
@signed_in
def discard_kind(name: str) -> Response:
    return _all_of_kind("discard", name)


def _when(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def _package(row: Any, job: Any) -> dict[str, Any]:
    """One package as the page shows it; `job`: its unfinished build job, if any (when it tries next)."""
    years = row["retention_years"]
    return {
        "code": row["dossier_code"], "state": row["state"], "label": archive_rules.STATE_LABELS_VI[row["state"]],
        "final": f"{row['final_status']} - {STATUS_LABELS_VI[Status(row['final_status'])]}",
        "final_at": _when(row["final_at"]), "attempts": row["attempts"], "flag": row["flag"] or "",
        "last_error": row["last_error"] or "", "sealed_at": _when(row["sealed_at"]), "version": row["version"],
        "timestamps": row["timestamps"], "verified": row["verified_at"] is not None,
        "retention": "" if years is None else "vĩnh viễn" if years == 0 else f"{years} năm",
        "retain_until": _when(row["retain_until"]), "minimised_at": _when(row["minimised_at"]),
        "size": row["size"], "updated_at": _when(row["updated_at"]),
        "next_try": "" if job is None else "thư chết" if job["state"] == outbox.DEAD else
        _when(job["next_attempt_at"]),
    }


@bp.get("/archive")
@signed_in
def archive(name: str) -> str:
    """The archive packages: waiting to be sealed (pending, failed with attempts and last error) and sealed."""
    with _gateway().engine.connect() as conn:
        counts = packages.counts(conn)
        waiting = packages.listing(conn, archive_rules.FAILING, limit=200) + \
            packages.listing(conn, archive_rules.PENDING, limit=200)
        sealed = packages.listing(conn, archive_rules.SEALED, limit=200)
        jobs_of = outbox.unfinished_of_keys(conn, archiving.QUEUE, [r["dossier_code"] for r in waiting])
    return render_template("console/archive.html", caller=name, csrf=session["csrf"], counts=counts,
                           waiting=[_package(r, jobs_of.get(r["dossier_code"])) for r in waiting],
                           sealed=[_package(r, None) for r in sealed], labels=archive_rules.STATE_LABELS_VI)
