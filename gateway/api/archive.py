"""A finished dossier's archive package: the sealed BagIt zip, as stored, for an auditor or the one-stop."""

from __future__ import annotations

from flask import Blueprint, current_app, send_file
from flask.typing import ResponseReturnValue

from gateway.domain.archive import SEALED, safe_name
from gateway.services.dossiers.filing import archive_package
from gateway.services.errors import Conflict, NotFound

from .auth import require

bp = Blueprint("archive", __name__, url_prefix="/api/v1")


@bp.get("/dossiers/<code>/archive")
@require("one_stop", "portal", "ops")
def package(code: str) -> ResponseReturnValue:
    """The newest package file (application/zip); 404 without a package, 409 while it is not sealed yet."""
    gateway = current_app.config["GATEWAY"]
    row = archive_package(gateway.context, code)
    if row is None:
        raise NotFound(f"dossier {code} has no archive package (not finished, or unknown)")
    if row["state"] != SEALED:
        raise Conflict(f"the archive package of {code} is not sealed yet ({row['state']}: {row['flag'] or 'waiting'})",
                       state=row["state"])
    path = gateway.archive.store.resolve(row["path"])
    if not path.is_file():
        raise NotFound(f"the package file of {code} is missing from the archive folder; restore it from backup")
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"{safe_name(code)}.v{row['version']:04d}.zip", etag=row["sha256"], max_age=0)
