"""Fake certification authority: serves CRLs at their distribution points, as VNPT-CA or the national root do.

Testers publish a CRL (DER) with `PUT /ca/_mock/crls/<name>`; the gateway fetches `GET /ca/<name>` when
revocation fetching is on. Every fetch is logged, so a test can see the gateway's cache at work, and the
usual faults apply (an unreachable CA is a normal day for revocation checking).
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, Response, jsonify, request

from mocks.harness import FaultInjector, RequestLog, add_mock_endpoints, replaced_outcome

MAX_CRL_BYTES = 1024 * 1024


def create_blueprint() -> Blueprint:
    bp = Blueprint("ca", __name__)
    log, faults = RequestLog(), FaultInjector()
    crls: dict[str, bytes] = {}
    lock = threading.Lock()

    def reset() -> None:
        with lock:
            crls.clear()

    add_mock_endpoints(bp, log, faults, reset)

    @bp.put("/_mock/crls/<name>")
    def publish(name: str) -> Response | tuple[Response, int]:
        der = request.get_data()
        if not der or len(der) > MAX_CRL_BYTES or der[:1] != b"\x30":  # a DER SEQUENCE
            return jsonify({"error": "send the CRL as DER, at most 1 MB"}), 400
        with lock:
            crls[name] = der
        return jsonify({"published": name, "size": len(der)})

    @bp.get("/<name>")
    def crl(name: str) -> Response | tuple[Response, int]:
        log.append({"service": "crl", "name": name, "at": time.time()})
        outcome = replaced_outcome(faults.take("crl"), (503, {"error": "busy"}))
        if outcome is not None:
            return jsonify(outcome[1]), outcome[0]
        with lock:
            der = crls.get(name)
        if der is None:
            return jsonify({"error": f"no CRL {name}"}), 404
        return Response(der, mimetype="application/pkix-crl")

    return bp
