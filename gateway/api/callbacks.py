"""Partners calling back: the national portal hands over dossiers citizens filed there; payment providers
report payments; the post reports tracking. Providers authenticate by their own protocol's checksum or
signature, not by an API key."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from gateway.adapters.national_portal.mapping import DvcqgDossierIn, dvcqg_field
from gateway.adapters.payment.base import Callback, CallbackVerdict, PaymentProvider
from gateway.adapters.postal import callback_signature
from gateway.adapters.postal.vnpost import Tracking, VNPostClient
from gateway.domain.delivery import TrackingIn
from gateway.domain.dossier import DossierIn
from gateway.services.dossiers import deliveries
from gateway.services.dossiers import filing as service
from gateway.services.payments import callbacks as payment_callbacks

from .auth import require
from .body import parse, unstorable
from .errors import ApiError, validation_details
from .intake import filed_response
from .openapi import documented

bp = Blueprint("callbacks", __name__, url_prefix="/api/v1/callbacks")

MAX_CALLBACK_BYTES = 64 * 1024  # a payment result is a few hundred bytes
# Which partner each callback comes from, for auth.callback_networks.
PARTNER = {"callbacks.national_portal_dossier": "national_portal", "callbacks.payment_callback": "payment",
           "callbacks.postal_callback": "postal"}


@bp.before_request
def _from_a_partner_network() -> None:
    """Besides its signature or key, a partner's callback must come from its configured networks."""
    partner = PARTNER.get(request.endpoint or "")
    networks = current_app.config["GATEWAY"].settings.auth.callback_networks.get(partner) if partner else None
    if not networks:
        return
    try:
        source = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        source = None
    if source is None or not any(source in network for network in networks):
        raise ApiError(403, "source_not_allowed", f"callbacks from {partner} are not accepted from {source}")


@bp.post("/national-portal/dossiers")
@require("national_portal")
@documented(body=DvcqgDossierIn, created=True)
def national_portal_dossier() -> ResponseReturnValue:
    """A dossier a citizen filed on the national portal, in the portal's own DongBoHoSoMC shape.

    Identity in `DinhDanhCHS` (or flat `SoDinhDanh`), `NgayTiepNhan` (or `NgayNopHoSo`) as `yyyyMMddHHmmss`,
    `HinhThuc`, `DanhSachLePhi`, `TaiLieuNop`, ...; the level from `MucDo`, else `national_portal.procedure_levels`,
    else `national_portal.default_level`. Mapped into the same model as `POST /api/v1/dossiers`, validated by
    the same rules (a 422 names the portal's field), stored with `source: "national_portal"`.
    """
    portal = current_app.config["GATEWAY"].settings.national_portal
    mapped = parse(DvcqgDossierIn).to_dossier(portal.procedure_levels, portal.default_level)
    try:
        dossier = DossierIn.model_validate(mapped)
    except ValidationError as exc:  # name what is wrong in the portal's own field names
        details = [{**d, "field": dvcqg_field(d["field"])} for d in validation_details(exc)]
        raise ApiError(422, "validation_failed", "the request body is not valid", details) from None
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
def payment_callback(provider_name: str) -> ResponseReturnValue:
    """A payment provider's result, in its own format; answered in its own format and codes.

    `national_platform`: a JSON POST checked by its `MaXacThuc`; `vnpay`: the IPN, a GET with the signed
    query string (`vnp_SecureHash`). What each verdict answers: `docs/payments.md#callbacks`.
    """
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


@bp.post("/postal/<provider_name>")
@documented(body={"type": "object", "description": "VNPost tracking update: orderNumber, statusCode, statusMessage, "
                                                   "at; signed with X-VNPost-Signature (HMAC-SHA256 of the body)"})
def postal_callback(provider_name: str) -> ResponseReturnValue:
    """A tracking update pushed by the post, authenticated by its HMAC signature over the raw body.

    `{orderNumber, statusCode, statusMessage, at}`, signed with `X-VNPost-Signature` (HMAC-SHA256 of the
    raw body). 401 bad signature, 400 not a tracking update, 404 unknown order, 422 unknown status code;
    otherwise `{"status": "ok", "applied": bool}` (an update older than the last applied one is kept but
    not applied).
    """
    gateway = current_app.config["GATEWAY"]
    if provider_name != VNPostClient.name:
        raise ApiError(404, "not_found", f"no postal provider {provider_name!r}; known: ['{VNPostClient.name}']")
    if request.content_length and request.content_length > MAX_CALLBACK_BYTES:
        raise ApiError(413, "too_large", "a tracking update is a few hundred bytes")
    raw = request.get_data(cache=True)
    if not callback_signature.verify(raw, request.headers.get(callback_signature.HEADER),
                                     gateway.settings.postal.callback_secret):
        deliveries.refuse_callback(gateway.context, provider_name, "bad signature", remote_addr=request.remote_addr)
        raise ApiError(401, "bad_signature", f"{callback_signature.HEADER} does not match the body")
    try:
        data = json.loads(raw.decode("utf-8"))
        update = TrackingIn.model_validate(data if unstorable(data) is None else None)
    except (UnicodeDecodeError, ValueError, RecursionError):  # pydantic's ValidationError is a ValueError
        raise ApiError(400, "bad_callback", "a tracking update is a JSON object with orderNumber, statusCode, "
                                            "statusMessage and at (ISO 8601)") from None
    tracking = Tracking(update.statusCode, update.statusMessage, update.at)
    order_number = update.orderNumber
    moved = deliveries.tracking_callback(gateway.context, order_number, tracking)
    return jsonify({"status": "ok", "applied": moved})
