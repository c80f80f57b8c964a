"""A dossier's attachments and result documents as files, wherever they are kept now (database or archive)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app

from gateway.services.archive import files as service

from .auth import require

bp = Blueprint("documents", __name__, url_prefix="/api/v1")


def _gateway():  # noqa: ANN202
    return current_app.config["GATEWAY"]


def _file(found: service.StoredFile) -> Response:
    response = Response(found.data, mimetype=found.content_type)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found.name, safe='')}"
    response.headers["X-Served-From"] = found.source
    response.set_etag(found.sha256)
    return response


@bp.get("/dossiers/<code>/attachments/<path:attachment_id>")
@require("one_stop", "portal", "ops")
def dossier_attachment(code: str, attachment_id: str) -> Response:
    """An attachment of a dossier, as filed.

    The bytes the portal filed (`content_base64`), whose SHA-256 is the ETag. After data minimisation
    (docs/archive.md) they come from the dossier's sealed archive package, checked against its manifest and
    the hash kept in the database; `X-Served-From` says `database` or `archive`. 404 for an unknown dossier or
    attachment, or one filed as a link; 503 `archive_package_missing` or 500 `archive_package_damaged` when
    only the archive has the file and the package is missing or does not match.
    """
    return _file(service.dossier_attachment(_gateway().context, _gateway().archive.store, code, attachment_id))


@bp.get("/notifications/<reference>/attachments/<int:number>")
@require("one_stop", "ops")
def result_document(reference: str, number: int) -> Response:
    """A file attached to a notification (a result document sent to the applicant), numbered from 1.

    Served like a dossier's attachments: from the database, or after data minimisation from the archive
    package, with the same checks and errors.
    """
    return _file(service.result_document(_gateway().context, _gateway().archive.store, reference, number))
