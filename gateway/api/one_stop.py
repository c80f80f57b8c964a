"""The one-stop software: reads the change feed, reports processing steps."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field, ValidationError

from gateway.domain.dossier import EventIn
from gateway.services.dossiers import steps
from gateway.services.one_stop import feed

from . import views
from .auth import require
from .body import json_object, parse
from .errors import SERVICE_STATUS, ApiError, service_error_body, validation_details
from .openapi import documented

bp = Blueprint("one_stop", __name__, url_prefix="/api/v1")

MAX_FEED_PAGE = 500
MAX_BATCH = 500


class BatchStep(EventIn):
    code: str = Field(min_length=1, max_length=64)


class StepBatch(BaseModel):
    """The body of POST /api/v1/one-stop/events (each step is validated on its own)."""

    events: list[BatchStep] = Field(min_length=1, max_length=MAX_BATCH)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "bad_query", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/one-stop/feed")
@require("one_stop")
@documented(query={"after": {"type": "integer", "minimum": 0},
                   "limit": {"type": "integer", "minimum": 1, "maximum": MAX_FEED_PAGE}})
def read_feed() -> ResponseReturnValue:
    """The ordered change feed (`dossier.created`, ...), after a cursor.

    Cursor-based and at-least-once: re-reading an old cursor returns the same items. `next_cursor` is the
    last item's cursor, or the caller's own `after` when there is nothing new. `portal.repaired` and
    `portal.needs_attention` tell that the dossier's record at the national portal was repaired, or differs in a
    way only an operator can settle (`kind`, `state`, `note`, `differences`: docs/operations.md).
    """
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_FEED_PAGE)
    items = feed.page(current_app.config["GATEWAY"].context, after, limit)
    # The next cursor is the last item's; with no items the caller keeps its own (nothing is skipped).
    return jsonify({"items": items, "next_cursor": items[-1]["cursor"] if items else str(after)})


@bp.post("/dossiers/<code>/events")
@require("one_stop")
@documented(body=EventIn, created=True)
def report_step(code: str) -> ResponseReturnValue:
    """Report a processing step of a dossier (status 2 to 10).

    Fields: status, officer, position, department, note, due_at, at, event_id. 201 recorded; 200 with the
    stored step for a repeated `event_id` with the same content; 409 for an `event_id` reused for another
    step, or a step the status machine does not allow from the current status.
    """
    event = parse(EventIn)
    recorded = steps.record_event(current_app.config["GATEWAY"].context, code, event, actor=g.caller)
    return jsonify(views.step(recorded.event)), 201 if recorded.created else 200


@bp.post("/one-stop/events")
@require("one_stop")
@documented(body=StepBatch)
def report_steps() -> ResponseReturnValue:
    """Up to 500 steps in one request and one transaction: `{"events": [{"code", ...step}]}`.

    Always 200 when the batch itself is well-formed; each step gets its own result, in order, with the
    status the single-step endpoint would have answered (201, 200 for a repeat, 404, 409, 422).
    """
    items = json_object().get("events")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ApiError(422, "validation_failed", f"'events' must be a list of 1 to {MAX_BATCH} steps")
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, str, EventIn]] = []
    for i, item in enumerate(items):
        try:
            step = BatchStep.model_validate(item)
        except ValidationError as exc:
            code = item.get("code") if isinstance(item, dict) else None
            results[i] = {"index": i, "code": code, "status": 422, "error": {
                "code": "validation_failed", "message": "the step is not valid", "details": validation_details(exc)}}
            continue
        # The same step model as the single-step endpoint, so an event_id means the same thing in both.
        valid.append((i, step.code, EventIn.model_validate(step.model_dump(exclude={"code"}))))
    outcomes = steps.record_events(current_app.config["GATEWAY"].context, [(c, e) for _, c, e in valid],
                                   actor=g.caller)
    for (i, code, _), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, steps.Recorded):
            results[i] = {"index": i, "code": code, "status": 201 if outcome.created else 200,
                          "event": views.step(outcome.event)}
        else:
            results[i] = {"index": i, "code": code, "status": SERVICE_STATUS.get(type(outcome), 400),
                          "error": service_error_body(outcome)}
    return jsonify({"accepted": sum(1 for r in results if r and r["status"] == 201), "results": results})
