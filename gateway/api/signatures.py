"""PDF signature verification for the one-stop software and the portals."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from gateway.services.dossiers.signatures import Signatures
from gateway.signature.sandbox import SandboxBusy, VerificationRefused

from .auth import require
from .errors import ApiError
from .openapi import documented

bp = Blueprint("signatures", __name__, url_prefix="/api/v1")

PDF_BODY = {"application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}}}


FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the file


def _signatures() -> Signatures:
    return current_app.config["GATEWAY"].signatures


def _pdf_from_request(limit: int) -> bytes:
    """The PDF as the body (application/pdf) or as the `file` part of a form; the size cap before reading."""
    too_large = ApiError(413, "pdf_too_large", f"the PDF is larger than {limit} bytes")
    length = request.content_length or 0
    if request.mimetype == "application/pdf":
        if length > limit:
            raise too_large
        pdf = request.get_data(cache=False)
    elif request.mimetype == "multipart/form-data":
        if length > limit + FORM_OVERHEAD:
            raise too_large
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "missing_file", "send the PDF as the form field 'file'")
        pdf = upload.read(limit + 1)
    else:
        raise ApiError(415, "unsupported_media_type", "send the PDF as application/pdf or multipart/form-data")
    if not pdf:
        raise ApiError(400, "empty_body", "the PDF is empty")
    if len(pdf) > limit:
        raise too_large
    return pdf


@bp.post("/signatures/verify")
@require("one_stop", "portal")
@documented(media=PDF_BODY)
def verify() -> ResponseReturnValue:
    """Verify every signature of a PDF against the configured trust roots.

    The PDF as an `application/pdf` body or as the `file` field of `multipart/form-data`. 200 with the
    report, also for a broken signature (its own `FORMAT_FAILURE`); 400 `empty_body` / `missing_file`;
    413 `pdf_too_large` (`signature.max_pdf_bytes`, checked before the body is read); 415 another type;
    422 `not_a_pdf`, `malformed_pdf` (truncated, broken cross-references, nested too deeply, a
    decompression bomb), `encrypted_pdf` (a password is needed), `pdf_too_complex` (over the time or memory
    limit); 503 `verifier_busy` with `Retry-After`. What the report says: `docs/signatures.md`.
    """
    signatures = _signatures()
    pdf = _pdf_from_request(signatures.settings.max_pdf_bytes)
    try:
        return jsonify(signatures.verify(pdf))
    except VerificationRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    except SandboxBusy as exc:
        raise ApiError(503, "verifier_busy", str(exc), headers={"Retry-After": "1"}) from None
