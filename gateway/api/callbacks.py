"""Partners calling back: the national portal hands over dossiers citizens filed there."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from gateway.adapters.national_portal.mapping import DvcqgDossierIn
from gateway.domain.dossier import DossierIn
from gateway.services import dossiers as service

from .auth import require
from .body import parse
from .intake import filed_response
from .openapi import documented

bp = Blueprint("callbacks", __name__, url_prefix="/api/v1/callbacks")


@bp.post("/national-portal/dossiers")
@require("national_portal")
@documented(body=DvcqgDossierIn, created=True)
def national_portal_dossier():  # noqa: ANN201
    dossier = parse(DossierIn, parse(DvcqgDossierIn).to_dossier())
    return filed_response(service.file_dossier(current_app.config["GATEWAY"].context, dossier,
                                               source="national_portal", actor=g.caller))
