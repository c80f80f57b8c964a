"""The one-stop software: reads the change feed, reports processing steps."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from gateway.domain.dossier import EventIn
from gateway.services import dossiers as service
from gateway.store import feed

from . import views
from .auth import require
from .body import parse
from .errors import ApiError

bp = Blueprint("one_stop", __name__, url_prefix="/api/v1")

MAX_FEED_PAGE = 500


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "bad_query", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/one-stop/feed")
@require("one_stop")
def read_feed():  # noqa: ANN201
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_FEED_PAGE)
    with current_app.config["GATEWAY"].engine.connect() as conn:
        items = [views.feed_item(r) for r in feed.read(conn, after, limit)]
    # The next cursor is the last item's; with no items the caller keeps its own (nothing is skipped).
    return jsonify({"items": items, "next_cursor": items[-1]["cursor"] if items else str(after)})


@bp.post("/dossiers/<code>/events")
@require("one_stop")
def report_step(code: str):  # noqa: ANN201
    event = parse(EventIn)
    recorded = service.record_event(current_app.config["GATEWAY"].context, code, event, actor=g.caller)
    return jsonify(views.step(recorded.event)), 201 if recorded.created else 200
