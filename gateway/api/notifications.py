"""Ad-hoc citizen notifications (SMS or email from a template), and what became of any notification."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, current_app, g, jsonify
from flask.typing import ResponseReturnValue

from gateway.domain.notifications import NotificationIn
from gateway.services.notifications import messages as service

from . import views
from .auth import require
from .body import parse
from .openapi import documented

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")


def _gateway() -> Gateway:
    return current_app.config["GATEWAY"]


@bp.post("/notifications")
@require("one_stop", "ops")
@documented(body=NotificationIn, created=True)
def send() -> ResponseReturnValue:
    """Render a template and queue it: 202 with the text as it will be sent (and its SMS segments).

    An ad-hoc SMS or email. For SMS the answer names the `encoding` (gsm7 or ucs2) and the number of
    `segments`. 422 for a bad number or address, an unknown template, or a value the template needs and was
    not given.
    """
    gateway = _gateway()
    row = service.send_now(gateway.context, gateway.notifier, parse(NotificationIn), caller=g.caller)
    response = jsonify(views.notification(row))
    response.status_code = 202
    response.headers["Location"] = f"/api/v1/notifications/{row['reference']}"
    return response


@bp.get("/notifications/<reference>")
@require("one_stop", "ops")
def get(reference: str) -> ResponseReturnValue:
    """A notification: its state, and every attempt with what each provider answered.

    State `queued`, `sent` or `failed`; the provider; `attempt_log`: each provider tried and its answer.
    """
    row, attempts, attachments = service.get(_gateway().context, reference)
    return jsonify(views.notification(row, attempts, attachments))


@bp.get("/dossiers/<code>/notifications")
@require("one_stop", "ops")
def of_dossier(code: str) -> ResponseReturnValue:
    """What the applicant of a dossier has been told, oldest first."""
    rows = service.of_dossier(_gateway().context, code)
    return jsonify({"items": [views.notification(r) for r in rows]})
