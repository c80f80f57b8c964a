"""Operators: jobs by state, dead letters to retry or discard, payments to look at, late dossiers."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from gateway.config import Role
from gateway.domain.payment import PaymentState
from gateway.services.audit import chain as audit_chain
from gateway.services.dossiers import sla
from gateway.services.ops import clock, dead_letters
from gateway.services.ops import jobs as outbox_jobs
from gateway.services.ops.jobs import STATES
from gateway.services.payments import orders as payments
from gateway.services.portal_drift import findings as portal_drift
from gateway.services.unit_of_work import Context

from . import views
from .auth import require
from .body import parse
from .errors import ApiError
from .openapi import documented

bp = Blueprint("ops", __name__, url_prefix="/ops")
COUNTS = ("all", "unfinished")  # GET /ops/jobs?counts=


def ctx() -> Context:
    return current_app.config["GATEWAY"].context


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1, max_length=4)
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)


@bp.get("/api-keys")
@require("ops")
def list_keys() -> ResponseReturnValue:
    """Every API key: from the settings and from the database, active or revoked (never the key itself).

    Each with its roles and rate; not its hash either.
    """
    return jsonify({"keys": current_app.config["GATEWAY"].keys.describe()})


@bp.post("/api-keys")
@require("ops")
@documented(body=ApiKeyIn, created=True)
def add_key() -> ResponseReturnValue:
    """Create an API key, in effect at once; the key is in this answer and nowhere else.

    201 with `key`, shown this once (only its SHA-256 is stored); 409 for a name in use (also a revoked
    one, or one in the settings); 422 for a bad name or role.
    """
    body = parse(ApiKeyIn)
    key = current_app.config["GATEWAY"].keys.add(body.name, list(body.roles), rate_per_minute=body.rate_per_minute,
                                                 actor=g.caller)
    return jsonify({"name": body.name, "roles": sorted(set(body.roles)), "rate_per_minute": body.rate_per_minute,
                    "key": key}), 201


@bp.delete("/api-keys/<name>")
@require("ops")
def revoke_key(name: str) -> ResponseReturnValue:
    """Revoke a database key: refused within auth.key_cache_seconds by every API process.

    The process that answers refuses it at once. 404 when there is no such active key.
    """
    current_app.config["GATEWAY"].keys.revoke(name, actor=g.caller)
    return jsonify({"revoked": name})


@bp.get("/audit/verify")
@require("ops")
def audit_verify() -> ResponseReturnValue:
    """Check the audit log's hash chain: which record was edited, deleted or moved, if any, and whether
    records were cut from its end up to the newest TSA anchor.

    `{"ok", "checked", "unsealed", "head": {seq, hash}, "anchors": {count, signatures_checked, newest,
    unanchored_records}, "problems": [{seq, id, kind, message}]}`, kind `edited`, `missing`, `out_of_order`,
    `truncated`, `anchor_mismatch` or `anchor_forged` (`docs/operations.md#audit-log-as-a-hash-chain`).
    """
    gateway = current_app.config["GATEWAY"]
    return jsonify(audit_chain.verify(gateway.engine, gateway.settings.audit.key, gateway.archive.roots))


@bp.get("/trust")
@require("ops")
def trust() -> ResponseReturnValue:
    """The roots signatures may chain to, with their SHA-256 fingerprints.

    Each root: group (`public` or `government`), file, subject, SHA-256, expiry.
    """
    store = current_app.config["GATEWAY"].signatures.trust
    return jsonify({"roots": [root.describe() for root in store.roots]})


@bp.get("/jobs")
@require("ops")
@documented(query={"state": {"type": "string", "enum": list(STATES)}, "queue": {"type": "string"},
                   "ordering_key": {"type": "string"}, "counts": {"type": "string", "enum": list(COUNTS)}})
def jobs() -> ResponseReturnValue:
    """Job counts by queue and state, and the jobs in one state (?state=).

    `?queue=` and `?ordering_key=` (a dossier code) narrow the list; up to 500 jobs. `?counts=unfinished` counts
    the pending, in-flight and dead jobs only: counting every state reads all the jobs ever finished, so a
    dashboard that polls the backlog asks for these.
    """
    state = request.args.get("state")
    which = request.args.get("counts", "all")
    if which not in COUNTS:
        raise ApiError(400, "bad_query", f"counts must be one of {list(COUNTS)}")
    counts = [dict(r) for r in outbox_jobs.counts(ctx(), unfinished_only=which == "unfinished")]
    if state is None:
        return jsonify({"counts": counts})
    if state not in STATES:
        raise ApiError(400, "bad_query", f"state must be one of {list(STATES)}")
    rows = outbox_jobs.in_state(ctx(), state, queue=request.args.get("queue"),
                                ordering_key=request.args.get("ordering_key"), limit=500)
    return jsonify({"counts": counts, "items": [views.job(r) for r in rows]})


@bp.get("/dead-letters")
@require("ops")
@documented(query={"queue": {"type": "string"}})
def list_dead_letters() -> ResponseReturnValue:
    """Dead letters, with their last error and attempts."""
    rows = dead_letters.list_dead(ctx(), queue=request.args.get("queue"))
    return jsonify({"items": [views.job(r) for r in rows]})


@bp.post("/dead-letters/<int:job_id>/retry")
@require("ops")
def retry(job_id: int) -> ResponseReturnValue:
    """Give a dead letter fresh attempts."""
    return jsonify(views.job(dead_letters.retry(ctx(), job_id, actor=g.caller)))


@bp.post("/dead-letters/<int:job_id>/discard")
@require("ops")
def discard(job_id: int) -> ResponseReturnValue:
    """Give up on a dead letter."""
    return jsonify(views.job(dead_letters.discard(ctx(), job_id, actor=g.caller)))


@bp.get("/payments")
@require("ops")
@documented(query={"state": {"type": "string", "enum": [s.value for s in PaymentState]},
                   "flagged": {"type": "boolean"}})
def list_payments() -> ResponseReturnValue:
    """Payments, newest first; ?flagged=true for those an operator must look at (paid late, say).

    A flagged payment was paid late, or paid for a closed dossier: the money is recorded, never dropped.
    """
    state = request.args.get("state")
    if state is not None and state not in {s.value for s in PaymentState}:
        raise ApiError(400, "bad_query", f"state must be one of {[s.value for s in PaymentState]}")
    flagged = request.args.get("flagged", "false").lower()
    if flagged not in ("true", "false", "1", "0"):
        raise ApiError(400, "bad_query", "flagged must be true or false")
    rows = payments.listing(ctx(), state=state, flagged=flagged in ("true", "1"))
    return jsonify({"items": [views.payment(r) for r in rows]})


@bp.get("/sla-breaches")
@require("ops")
@documented(query={"after": {"type": "integer"}, "limit": {"type": "integer"}})
def sla_breaches() -> ResponseReturnValue:
    """New dossiers (status 1) past their 8-working-hour acknowledgment deadline, with how late they are.

    Each with `overdue_minutes`; page on with `?after=` set to `next_after`.
    """
    try:
        after = int(request.args.get("after", "0"))
        limit = int(request.args.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "bad_query", "after and limit are integers") from None
    if after < 0 or not 1 <= limit <= 1000:
        raise ApiError(400, "bad_query", "after >= 0, 1 <= limit <= 1000")
    rows = sla.breaches(ctx(), limit=limit, after_id=after)
    now = clock.now()
    return jsonify({"items": [views.sla_breach(r, now) for r in rows],
                    "next_after": rows[-1]["id"] if rows else after})


@bp.get("/portal-drift")
@require("ops")
def portal_drift_overview() -> ResponseReturnValue:
    """Drift with the national portal: coverage, open findings, the newest closed, answers not trusted.

    `coverage`: dossiers in scope (`due`), read back within `national_portal.reconcile.window_hours`
    (`checked_in_window`, `ratio`) and the oldest look's age. Each finding: kind (missing, behind, fields, ahead,
    foreign), state (repairing, repaired, operator, accepted, cleared), the differences side by side
    (`docs/operations.md#drift-with-the-national-portal`).
    """
    gateway = current_app.config["GATEWAY"]
    seen = portal_drift.overview(ctx(), gateway.settings.national_portal.reconcile)
    return jsonify({"coverage": seen.coverage, "open": [views.portal_finding(f) for f in seen.open],
                    "closed": [views.portal_finding(f) for f in seen.closed],
                    "unreadable": [views.portal_check(c) for c in seen.unreadable]})


@bp.post("/portal-drift/<int:finding_id>/accept")
@require("ops")
def portal_drift_accept(finding_id: int) -> ResponseReturnValue:
    """Take the portal's version: the finding's differences are left out of later looks (audited).

    404 for no such finding, 409 when it is no longer open. The gateway's own dossier is not changed.
    """
    return jsonify(views.portal_finding(portal_drift.accept(ctx(), finding_id, actor=g.caller)))


@bp.post("/portal-drift/dossiers/<code>/recheck")
@require("ops")
def portal_drift_recheck(code: str) -> ResponseReturnValue:
    """Read the dossier back from the national portal now (a look-up job, audited); 202 with the job's id."""
    job_id = current_app.config["GATEWAY"].drift.recheck(code, actor=g.caller)
    return jsonify({"code": code, "job": job_id}), 202
