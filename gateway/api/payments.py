"""The one-stop software asks for fee payments and follows them; the receipt is served once paid."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from gateway.domain.payment import PaymentRequestIn, PaymentState
from gateway.services.payments import orders as service

from . import views
from .auth import require
from .body import parse
from .errors import ApiError
from .openapi import documented

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

bp = Blueprint("payments", __name__, url_prefix="/api/v1")

# Printable ASCII, as the IETF Idempotency-Key draft and common APIs allow.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _gateway() -> Gateway:
    return current_app.config["GATEWAY"]


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


@bp.post("/dossiers/<code>/payments")
@require("one_stop")
@documented(body=PaymentRequestIn, created=True)
def request_payment(code: str) -> ResponseReturnValue:
    """Ask for a fee payment: 201 with the pay URL, 202 while the provider has not answered yet.

    Level 4 (toàn trình) dossiers only. An optional `Idempotency-Key` header (1 to 255 printable ASCII
    characters) makes a retry safe: the same key and body again answer 200 with the same payment.
    201 `pending` with `pay_url`; 202 `initiating` while the provider has not answered (with
    `last_error`); 409 for the same key with another body, a fee already held by an open or paid
    payment, a một phần dossier or a closed one. How a payment moves on: `docs/payments.md`.
    """
    body = parse(PaymentRequestIn)
    gateway = _gateway()
    requested = service.request_payment(gateway.context, code, body, caller=g.caller,
                                        idempotency_key=_idempotency_key(), client_ip=request.remote_addr,
                                        attempt_now=gateway.runner.run_claimed)
    payment = requested.payment
    # 200: the same request again; 202: stored, but the provider has not given a pay URL yet.
    status = (202 if payment["state"] == PaymentState.INITIATING else 201) if requested.created else 200
    response = jsonify(views.payment(payment))
    response.status_code = status
    response.headers["Location"] = f"/api/v1/dossiers/{code}/payments/{payment['reference']}"
    return response


@bp.get("/dossiers/<code>/payments")
@require("one_stop", "portal", "ops")
def list_payments(code: str) -> ResponseReturnValue:
    """The payments of a dossier, oldest first.

    Each as `GET /api/v1/dossiers/{code}/payments/{payment_id}` shows it.
    """
    rows, with_receipt = service.of_dossier(_gateway().context, code)
    return jsonify({"items": [views.payment(r, has_receipt=r["id"] in with_receipt) for r in rows]})


@bp.get("/dossiers/<code>/payments/<payment_id>")
@require("one_stop", "portal", "ops")
def get_payment(code: str, payment_id: str) -> ResponseReturnValue:
    """One payment of a dossier.

    Its state (and Vietnamese label), amount, items, pay URL, expiry, paid time, transaction id, `flag`,
    `last_error`, and `receipt_url` once the receipt is stored.
    """
    row, has_receipt = service.get(_gateway().context, code, payment_id)
    return jsonify(views.payment(row, has_receipt=has_receipt))


@bp.get("/dossiers/<code>/payments/<payment_id>/receipt")
@require("one_stop", "portal", "ops")
def get_receipt(code: str, payment_id: str) -> ResponseReturnValue:
    """The receipt (biên lai) of a paid payment, as the provider issued it (PDF).

    404 until a worker has fetched it from the provider.
    """
    pdf = service.receipt(_gateway().context, code, payment_id)
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="bienlai-{payment_id}.pdf"'})
