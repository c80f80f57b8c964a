"""The provincial portal (and the national portal) file dossiers; callers read them back."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from gateway.domain.codes import DOSSIER_CODE_RE, ID_NUMBER_RE
from gateway.domain.dossier import DossierIn
from gateway.services.dossiers import filing as service
from gateway.services.unit_of_work import Context

from . import views
from .auth import require
from .body import parse
from .errors import ApiError
from .openapi import documented

bp = Blueprint("intake", __name__, url_prefix="/api/v1")


def ctx() -> Context:
    return current_app.config["GATEWAY"].context


def filed_response(filed: service.Filed) -> tuple[Response, int]:
    return jsonify(views.dossier(filed.dossier)), 201 if filed.created else 200


@bp.post("/dossiers")
@require("portal", "national_portal")
@documented(body=DossierIn, created=True)
def file_dossier() -> ResponseReturnValue:
    """File a dossier.

    201 with the stored dossier (status 1, "Mới đăng ký"); 200 with the same body for the same request again;
    409 for the same code with another body. A portal key files with `source: "portal"`, a national-portal
    key with `source: "national_portal"`. The rules each field is checked by are in `docs/api-conventions.md`.
    """
    dossier = parse(DossierIn)
    source = "national_portal" if "national_portal" in g.roles and "portal" not in g.roles else "portal"
    return filed_response(service.file_dossier(ctx(), dossier, source=source, actor=g.caller))


@bp.get("/dossiers/<code>")
@require("one_stop", "portal", "ops")
def get_dossier(code: str) -> ResponseReturnValue:
    """A dossier with its history.

    Every step reported, in order, and, for each inline PDF attachment, its signature verdict once a worker
    has verified it.
    """
    dossier, history, verdicts = service.get_with_history(ctx(), code)
    view = views.dossier(dossier, history, verdicts)
    if (package := service.archive_state(ctx(), dossier["id"])) is not None:
        view["archive"] = views.archive_package(package)
    return jsonify(view)


@bp.get("/lookup")
@require("portal")
@documented(query={"code": {"type": "string"}, "id_number": {"type": "string", "pattern": "^(\\d{12}|\\d{9})$"}})
def lookup() -> ResponseReturnValue:
    """The citizen's view of a dossier, by ?code= or by ?id_number=.

    Give exactly one of the two (400 otherwise). Each item: code, procedure, applicant name, received, due,
    status and its Vietnamese label. 404 when nothing matches.
    """
    code, id_number = request.args.get("code"), request.args.get("id_number")
    if bool(code) == bool(id_number):
        raise ApiError(400, "bad_query", "give exactly one of ?code= or ?id_number=")
    if code and not DOSSIER_CODE_RE.match(code):
        raise ApiError(400, "bad_query", f"not a valid dossier code: {code!r}")
    if id_number and not ID_NUMBER_RE.match(id_number):
        raise ApiError(400, "bad_query", "id_number must be 12 (CCCD) or 9 (CMND) digits")
    rows = service.lookup(ctx(), code=code, id_number=id_number)
    if not rows:
        raise ApiError(404, "not_found", "no dossier matches")
    return jsonify({"items": [views.citizen(r) for r in rows]})
