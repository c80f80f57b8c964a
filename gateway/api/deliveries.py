"""Public-post delivery of a dossier's result: book it (once), follow it."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify
from flask.typing import ResponseReturnValue

from gateway.domain.delivery import DeliveryIn, DeliveryState
from gateway.services.dossiers import deliveries as service

from . import views
from .auth import require
from .body import parse
from .openapi import documented

bp = Blueprint("deliveries", __name__, url_prefix="/api/v1")


@bp.post("/dossiers/<code>/deliveries")
@require("one_stop")
@documented(body=DeliveryIn, created=True)
def book(code: str) -> ResponseReturnValue:
    """Book VNPost delivery: 201 with the waybill, 202 while VNPost has not answered, 200 for a repeat.

    The receiver defaults to the applicant; the OrderNumber is the dossier code. 200 with the same waybill
    for the same booking again; 202 in state `booking` while VNPost has not answered; 409 for other
    details, or before the result is ready (status 9 or 10 needed); 422 for bad input or a COD amount over
    `postal.max_cod_vnd`.
    """
    gateway = current_app.config["GATEWAY"]
    booked = service.book(gateway.context, code, parse(DeliveryIn), caller=g.caller,
                          attempt_now=gateway.runner.run_claimed)
    delivery = booked.delivery
    status = (202 if delivery["state"] == DeliveryState.BOOKING else 201) if booked.created else 200
    response = jsonify(views.delivery(delivery))
    response.status_code = status
    response.headers["Location"] = f"/api/v1/dossiers/{code}/deliveries"
    return response


@bp.get("/dossiers/<code>/deliveries")
@require("one_stop", "portal", "ops")
def get(code: str) -> ResponseReturnValue:
    """The dossier's delivery with its tracking history.

    State (and Vietnamese label), waybill, COD, receiver, the last tracking code, and `tracking`: every
    update received, `applied` or not.
    """
    delivery, events = service.get(current_app.config["GATEWAY"].context, code)
    return jsonify(views.delivery(delivery, events))
