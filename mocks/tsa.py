"""Fake time-stamping authority: RFC 3161 over HTTP (section 3.4), as a province's TSA (VNPT-CA, Ban Cơ yếu) serves.

`POST /tsa/` with a DER TimeStampReq (Content-Type application/timestamp-query) answers a DER TimeStampResp
(application/timestamp-reply). The token is made by certomancer's TimeStamper (by pyHanko's author), so the
ASN.1 is the field's own. Testers set the TSA's certificate with `PUT /tsa/_mock/identity`; the usual faults
apply, plus `garbage` (200 with bytes that are no TimeStampResp) and `error_code` (a granted-less `rejection`).
"""

from __future__ import annotations

import os
import threading
import time

from asn1crypto import cms, core, tsp
from certomancer.services import TimeStamper
from flask import Blueprint, Response, jsonify, request

from mocks.harness import FaultInjector, RequestLog, add_mock_endpoints, finish
from mocks.trust_services import SigningIdentity, default_pki

MAX_REQUEST_BYTES = 64 * 1024
REPLY = "application/timestamp-reply"


class _Refusal(core.Sequence):
    """TimeStampResp as RFC 3161 2.4.2 has it: the token OPTIONAL (asn1crypto's class requires it)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def _refusal(why: str) -> bytes:
    return _Refusal({"status": {"status": "rejection", "fail_info": tsp.PKIFailureInfo({why})}}).dump()


def create_blueprint() -> Blueprint:
    bp = Blueprint("tsa", __name__)
    log, faults = RequestLog(), FaultInjector()
    lock = threading.Lock()
    state: dict[str, SigningIdentity | None] = {"identity": None}

    def identity() -> SigningIdentity:
        with lock:
            if state["identity"] is None:
                state["identity"] = SigningIdentity.of(default_pki().tsa)
            return state["identity"]

    def reset() -> None:
        pass  # the identity stays: a reset clears calls and faults, not the PKI a test set up

    add_mock_endpoints(bp, log, faults, reset)

    @bp.put("/_mock/identity")
    def set_identity() -> Response | tuple[Response, int]:
        try:
            new = SigningIdentity.from_json(request.get_json(force=True, silent=True))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        with lock:
            state["identity"] = new
        return jsonify(new.as_json())

    @bp.get("/_mock/identity")
    def show_identity() -> Response:
        return jsonify(identity().as_json())

    @bp.post("/")
    def timestamp() -> Response | tuple[Response, int]:
        body = request.get_data()
        fault = faults.take("timestamp", modes=("http_500", "timeout", "error_code", "drop", "delay", "garbage"))
        log.append({"service": "timestamp", "size": len(body), "content_type": request.content_type,
                    "at": time.time(), **({"fault": fault.mode} if fault else {})})
        if fault is not None and fault.mode in ("http_500", "timeout"):
            return finish(fault, 500 if fault.mode == "http_500" else 504, {"error": f"injected {fault.mode}"})
        if fault is not None and fault.mode == "garbage":
            return Response(os.urandom(64), mimetype=REPLY)
        if fault is not None and fault.mode == "error_code":  # RFC 3161 2.4.2: status rejection, no token
            return Response(_refusal("system_failure"), mimetype=REPLY)
        if request.mimetype != "application/timestamp-query" or not body or len(body) > MAX_REQUEST_BYTES:
            return jsonify({"error": "send one DER TimeStampReq as application/timestamp-query"}), 400
        try:
            req = tsp.TimeStampReq.load(body)
            req.native  # noqa: B018 - parses the whole request: a broken one is refused here, not half-answered
        except Exception:  # noqa: BLE001 - not DER, or not a TimeStampReq
            return Response(_refusal("bad_data_format"), mimetype=REPLY, status=400)
        who = identity()
        stamper = TimeStamper(tsa_cert=who.cert, tsa_key=who.key, certs_to_embed=list(who.chain))
        reply = stamper.request_tsa_response(req)
        if fault is not None:  # delay or drop: the token was made, the reply suffers
            if fault.mode == "delay":
                time.sleep(fault.seconds)
            else:
                return finish(fault, 200, {})
        return Response(reply.dump(), mimetype=REPLY)

    return bp
