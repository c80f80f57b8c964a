"""Both SMS mocks under one prefix: /sms/viettel (SOAP) and /sms/vnpt (JSON), plus `/sms/_mock/*` over both.

Each provider keeps its own log, faults and reset at `/sms/<provider>/_mock/*`; the top-level ones list both
providers' requests (marked with `provider`), arm a fault on one or both, and reset both.
"""

from __future__ import annotations

from flask import Blueprint

from mocks import sms_viettel, sms_vnpt
from mocks.harness import MockParts, add_combined_mock_endpoints


def create_blueprint() -> Blueprint:
    """A fresh pair of SMS mocks as one blueprint; mount it at /sms."""
    viettel, vnpt = sms_viettel.ViettelSms(), sms_vnpt.VnptSms()
    bp = Blueprint("sms", __name__)
    add_combined_mock_endpoints(bp, {
        "viettel": MockParts(viettel.log, viettel.faults, viettel.reset),
        "vnpt": MockParts(vnpt.log, vnpt.faults, vnpt.reset),
    })  # fmt: skip
    bp.register_blueprint(sms_viettel.create_blueprint(viettel), url_prefix="/viettel")
    bp.register_blueprint(sms_vnpt.create_blueprint(vnpt), url_prefix="/vnpt")
    return bp
