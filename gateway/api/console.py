"""The operators' console at /ops/: plain server-rendered HTML, no JavaScript build step.

An operator signs in with an API key holding the `ops` role; the session cookie keeps only the key's
hash (so a revoked key ends the session too), is HttpOnly and SameSite=Strict, and every form carries a
per-session token against cross-site posts. Each action goes through the same services as /ops and the
CLI, and is audited under the key's name.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, session, url_for

from gateway.domain import archive as archive_rules
from gateway.domain.codes import STATUS_LABELS_VI, Status
from gateway.domain.dossier import VN_TZ
from gateway.domain.portal_drift import KIND_LABELS_VI, Kind
from gateway.services.access.api_keys import digest
from gateway.services.archive import packages as archive_packages
from gateway.services.dossiers import sla
from gateway.services.errors import Conflict, NotFound
from gateway.services.ops import adapter_health, clock, dead_letters, jobs, queue_history
from gateway.services.portal_drift import findings as portal_drift

from . import queue_chart, views
from .errors import ApiError

bp = Blueprint("console", __name__, url_prefix="/ops")

STATES = jobs.STATES


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


@bp.get("/")
@signed_in
def dashboard(name: str) -> str:
    """Queues, adapter health, dead letters with their buttons, SLA breaches, trust roots."""
    gateway = _gateway()
    now = clock.now()
    ctx = gateway.context
    queues: dict[str, dict[str, int]] = {}
    for row in jobs.counts(ctx):
        queues.setdefault(row["queue"], {})[row["state"]] = row["count"]
    health, sms = adapter_health.outbound_calls(ctx, now), adapter_health.sms_providers(ctx, now)
    code = request.args.get("code", "").strip()[:64]
    traced = jobs.of_dossier(ctx, code) if code else []
    dead_kinds = dead_letters.count_by_kind(ctx)  # counted in the database: the list shows only the first 200
    dead = dead_letters.list_dead(ctx, limit=200)
    chart = queue_chart.render(queue_history.last_hour(gateway.engine, now=now))
    return render_template("console/dashboard.html", caller=name, csrf=session["csrf"], states=STATES,
                           queues=queues, health=health, sms=sms, dead=dead, dead_kinds=dead_kinds,
                           breaches=sla.breaches(ctx, limit=100), roots=gateway.signatures.trust.roots,
                           code=code, traced=traced, chart=chart, sealing_lag=archive_packages.sealing_lag(ctx))


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
        "next_try": "" if job is None else "thư chết" if job["state"] == jobs.DEAD else
        _when(job["next_attempt_at"]),
    }


@bp.get("/archive")
@signed_in
def archive(name: str) -> str:
    """The archive packages: waiting to be sealed (pending, failed with attempts and last error) and sealed."""
    seen = archive_packages.overview(_gateway().context)
    return render_template("console/archive.html", caller=name, csrf=session["csrf"], counts=seen.counts,
                           sealing_lag=seen.lag_seconds, batch_wait=_gateway().settings.archive.batch_wait_seconds,
                           waiting=[_package(r, job) for r, job in seen.waiting],
                           sealed=[_package(r, None) for r in seen.sealed], labels=archive_rules.STATE_LABELS_VI)


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes >= 1440:
        return f"{minutes // 1440} ngày {minutes // 60 % 24} giờ"
    return f"{minutes // 60} giờ {minutes % 60} phút"


@bp.get("/drift")
@signed_in
def drift(name: str) -> str:
    """Drift with the national portal: coverage, findings side by side with their buttons, answers not trusted."""
    gateway = _gateway()
    seen = portal_drift.overview(gateway.context, gateway.settings.national_portal.reconcile)
    counts = {kind: sum(n for (k, _), n in seen.open_by_kind.items() if k == kind.value) for kind in Kind}
    return render_template("console/drift.html", caller=name, csrf=session["csrf"], coverage=seen.coverage,
                           age=_age(seen.coverage["oldest_check_age_seconds"]), counts=counts, kinds=KIND_LABELS_VI,
                           open=[views.portal_finding(f) for f in seen.open],
                           closed=[views.portal_finding(f) for f in seen.closed],
                           unreadable=[views.portal_check(c) for c in seen.unreadable],
                           window=gateway.settings.national_portal.reconcile.window_hours)


@bp.post("/console/portal-drift/<int:finding_id>/recheck")
@signed_in
def drift_recheck(name: str, finding_id: int) -> Response:
    gateway = _gateway()
    try:
        code = portal_drift.get(gateway.context, finding_id)["dossier_code"]
        gateway.drift.recheck(code, actor=f"console:{name}")
        flash(f"Hồ sơ {code}: đã xếp lịch đọc lại từ Cổng DVCQG.", "ok")
    except NotFound:
        flash(f"Không có phát hiện #{finding_id}.", "bad")
    return redirect(url_for("console.drift") + f"#finding-{finding_id}")


@bp.post("/console/portal-drift/<int:finding_id>/accept")
@signed_in
def drift_accept(name: str, finding_id: int) -> Response:
    try:
        finding = portal_drift.accept(_gateway().context, finding_id, actor=f"console:{name}")
        flash(f"Hồ sơ {finding['dossier_code']}: đã chấp nhận bản của Cổng.", "ok")
    except (NotFound, Conflict) as exc:
        flash(f"Phát hiện #{finding_id}: {exc.message}", "bad")
    return redirect(url_for("console.drift") + "#drift-closed")
