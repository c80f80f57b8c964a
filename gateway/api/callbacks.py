"""Partners calling back: the national portal hands over dossiers citizens filed there; payment providers
report payments. Providers authenticate by their own protocol's checksum, not by an API key."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from gateway.adapters.national_portal.mapping import DvcqgDossierIn
from gateway.adapters.payment.base import Callback, CallbackVerdict, PaymentProvider
from gateway.domain.dossier import DossierIn
from gateway.services import dossiers as service
from gateway.services import payment_callbacks

from .auth import require
from .body import parse, unstorable
from .errors import ApiError
from .intake import filed_response
from .openapi import documented

bp = Blueprint("callbacks", __name__, url_prefix="/api/v1/callbacks")

MAX_CALLBACK_BYTES = 64 * 1024  # a payment result is a few hundred bytes


@bp.post("/national-portal/dossiers")
@require("national_portal")
@documented(body=DvcqgDossierIn, created=True)
def national_portal_dossier():  # noqa: ANN201
    dossier = parse(DossierIn, parse(DvcqgDossierIn).to_dossier())
    return filed_response(service.file_dossier(current_app.config["GATEWAY"].context, dossier,
                                               source="national_portal", actor=g.caller))


def _callback_fields() -> dict[str, Any] | None:
    """The callback's fields wherever the provider puts them: a JSON object (national platform), or the
    query string / a form (VNPay's IPN is a GET with the signed fields in the query). None if unreadable."""
    if request.content_length and request.content_length > MAX_CALLBACK_BYTES:
        return None
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(cache=True).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
    else:
        data = {**request.args.to_dict(), **request.form.to_dict()} or None
    # Forged bodies carry anything: what no store can hold is no callback either.
    return data if isinstance(data, dict) and unstorable(data) is None else None


@bp.route("/payments/<provider_name>", methods=["POST", "GET"])
@documented(body={"type": "object", "description": "the provider's own callback fields"})
def payment_callback(provider_name: str):  # noqa: ANN201
    """A payment provider's result, in its own format; answered in its own format and codes."""
    gateway = current_app.config["GATEWAY"]
    provider: PaymentProvider | None = gateway.payment_providers.get(provider_name)
    if provider is None:
        raise ApiError(404, "not_found", f"no payment provider {provider_name!r}; known: "
                                         f"{sorted(gateway.payment_providers)}")
    data = _callback_fields()
    if data is None:
        unreadable = Callback.unreadable()
        payment_callbacks.refuse(gateway.context, provider, unreadable, CallbackVerdict.ERROR,
                                 remote_addr=request.remote_addr, reason="the body is not a callback")
        answer = provider.answer(unreadable, CallbackVerdict.ERROR)
        return jsonify(answer.body), 400
    answer = payment_callbacks.handle_callback(gateway.context, provider, data, remote_addr=request.remote_addr)
    return jsonify(answer.body), answer.status
