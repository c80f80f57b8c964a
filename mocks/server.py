"""One Flask app mounting every mock under its own prefix (or only some of them: a process per partner)."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from mocks import ca, email, national_portal, ocsp, one_stop, payment, postal, sms, tsa

# Every HTTP mock under its prefix. The SMTP server itself is started by `python -m mocks` (see __main__).
MOCKS = (
    ("/national-portal", national_portal.create_blueprint),
    ("/payment", payment.create_blueprint),
    ("/sms", sms.create_blueprint),  # /sms/viettel and /sms/vnpt inside
    ("/postal", postal.create_blueprint),
    ("/email", email.create_blueprint),
    ("/ca", ca.create_blueprint),
    ("/tsa", tsa.create_blueprint),  # RFC 3161 time stamps (the archive's seal)
    ("/ocsp", ocsp.create_blueprint),  # RFC 6960 revocation answers (the archive's long-term validation)
    ("/one-stop", one_stop.create_blueprint),
)


PREFIXES = tuple(prefix for prefix, _ in MOCKS)


def create_app(only: Iterable[str] | None = None) -> Flask:
    """Every mock, or only those under the prefixes in `only`. A mock's state lives in its process, so a
    benchmark that wants the partners not to share one interpreter runs one process per partner, each with
    its own `/_mock` API under the same prefix as always."""
    wanted = set(PREFIXES if only is None else only)
    if unknown := wanted - set(PREFIXES):
        raise ValueError(f"no mock under {sorted(unknown)}; the prefixes are {list(PREFIXES)}")
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Vietnamese in UTF-8 JSON

    for prefix, factory in MOCKS:
        if prefix in wanted:
            app.register_blueprint(factory(), url_prefix=prefix)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        # Clients under test parse JSON; an HTML 404/405 page would only confuse them.
        return jsonify({"error": exc.name, "message": exc.description}), exc.code or 500

    return app
