"""Fake OCSP responder: RFC 6960 over HTTP (appendix A), as VNPT-CA's or the national root's responders serve.

`POST /ocsp/` with a DER OCSPRequest (application/ocsp-request), or `GET /ocsp/<base64 of it>`, answers a DER
OCSPResponse (application/ocsp-response) signed by the issuing CA itself (RFC 6960 4.2.2.2), made by
certomancer's SimpleOCSPResponder. Testers register each CA and what it revoked with
`PUT /ocsp/_mock/issuers/<name>` {"cert", "key", "revoked": [{"serial": hex, "at": ISO time}]}; an issuer
nobody registered gets `unauthorized`, as a real responder answers for a CA it does not serve (a reset forgets
the registered CAs). Faults as
usual, plus `garbage`; `error_code` answers `tryLater`.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from datetime import UTC, datetime, timedelta

from asn1crypto import ocsp
from asn1crypto import x509 as asn1_x509
from certomancer.services import RevocationInfoInterface, SimpleOCSPResponder, choose_signed_digest, issuer_match
from flask import Blueprint, Response, jsonify, request

from mocks.harness import FaultInjector, RequestLog, add_mock_endpoints, finish
from mocks.trust_services import SigningIdentity, default_pki

MAX_REQUEST_BYTES = 64 * 1024
REPLY = "application/ocsp-response"


class _Issuer(RevocationInfoInterface):
    """One CA's answers: good, unless its serial is on the revoked list."""

    def __init__(self, who: SigningIdentity, revoked: dict[int, datetime]) -> None:
        self.who = who
        self.revoked = revoked

    def get_issuer_cert(self) -> asn1_x509.Certificate:
        return self.who.cert

    def check_revocation_status(self, cid: ocsp.CertId,
                                at_time: datetime) -> tuple[ocsp.CertStatus, list[ocsp.SingleResponseExtension]]:
        since = self.revoked.get(cid["serial_number"].native)
        if since is None or since > at_time:
            return ocsp.CertStatus("good"), []
        revoked = {"revocation_time": since, "revocation_reason": "key_compromise"}
        return ocsp.CertStatus(name="revoked", value=revoked), []


def _parse_revoked(items: object) -> dict[int, datetime]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValueError("revoked must be a list of {serial, at}")
    out: dict[int, datetime] = {}
    for item in items:
        try:
            at = datetime.fromisoformat(item["at"])
            out[int(item["serial"], 16)] = at if at.tzinfo else at.replace(tzinfo=UTC)
        except (TypeError, KeyError, ValueError):
            raise ValueError('each revoked entry is {"serial": hex, "at": ISO 8601 time}') from None
    return out


def create_blueprint() -> Blueprint:
    bp = Blueprint("ocsp", __name__)
    log, faults = RequestLog(), FaultInjector()
    lock = threading.Lock()
    issuers: dict[str, _Issuer] = {}

    def known() -> list[_Issuer]:
        with lock:
            if not issuers:  # make run: the throwaway PKI's CA answers
                pki = default_pki()
                revoked = {pki.revoked.cert.serial_number: pki.revoked_at}
                issuers["default"] = _Issuer(SigningIdentity.of(pki.ca), revoked)
            return list(issuers.values())

    def reset() -> None:  # like the CA mock's CRLs: a reset forgets the registered CAs
        with lock:
            issuers.clear()

    add_mock_endpoints(bp, log, faults, reset)

    @bp.put("/_mock/issuers/<name>")
    def register(name: str) -> Response | tuple[Response, int]:
        body = request.get_json(force=True, silent=True)
        try:
            who = SigningIdentity.from_json(body)
            revoked = _parse_revoked(body.get("revoked"))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        with lock:
            issuers[name] = _Issuer(who, revoked)
        return jsonify({"registered": name, "subject": who.cert.subject.human_friendly, "revoked": len(revoked)})

    def answer(der: bytes) -> Response | tuple[Response, int]:
        fault = faults.take("ocsp", modes=("http_500", "timeout", "error_code", "drop", "delay", "garbage"))
        log.append({"service": "ocsp", "size": len(der), "at": time.time(), **({"fault": fault.mode} if fault else {})})
        if fault is not None and fault.mode in ("http_500", "timeout", "drop"):
            return finish(fault, 500 if fault.mode == "http_500" else 504, {"error": f"injected {fault.mode}"})
        if fault is not None and fault.mode == "garbage":
            return Response(os.urandom(64), mimetype=REPLY)
        if fault is not None and fault.mode == "error_code":
            return Response(SimpleOCSPResponder.build_error_response("try_later").dump(), mimetype=REPLY)
        if fault is not None:  # delay
            time.sleep(fault.seconds)
        if not der or len(der) > MAX_REQUEST_BYTES:
            return Response(SimpleOCSPResponder.build_error_response("malformed_request").dump(), mimetype=REPLY)
        try:
            req = ocsp.OCSPRequest.load(der)
            cids = [item["req_cert"] for item in req["tbs_request"]["request_list"]]
        except Exception:  # noqa: BLE001 - not an OCSPRequest
            return Response(SimpleOCSPResponder.build_error_response("malformed_request").dump(), mimetype=REPLY)
        issuer = next((i for i in known() if cids and all(issuer_match(c, i.who.cert) for c in cids)), None)
        if issuer is None:
            return Response(SimpleOCSPResponder.build_error_response("unauthorized").dump(), mimetype=REPLY)
        now = datetime.now(UTC).replace(microsecond=0)
        responder = SimpleOCSPResponder(
            responder_cert=issuer.who.cert, responder_key=issuer.who.key,
            signature_algo=choose_signed_digest("sha256", issuer.who.cert.public_key), at_time=now,
            revinfo_interface=issuer, validity=timedelta(days=7))
        return Response(responder.build_ocsp_response(req).dump(), mimetype=REPLY)

    @bp.post("/")
    def post() -> Response | tuple[Response, int]:
        return answer(request.get_data())

    @bp.get("/<path:encoded>")
    def get(encoded: str) -> Response | tuple[Response, int]:
        try:
            der = base64.b64decode(encoded.replace("%2F", "/"), validate=False)
        except (binascii.Error, ValueError):
            der = b""
        return answer(der)

    return bp
