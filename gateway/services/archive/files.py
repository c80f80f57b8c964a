"""A dossier's attachments and result documents as files: from the working database while it holds them, from
the sealed archive package once data minimisation dropped them (minimise.py).

Read from the package, a file is checked against the payload manifest (and the manifest against the tag manifest
the archive timestamp covers) and against the hash the database kept, so what is served is the file as filed.
A package that is missing or does not match is an error that says so, for the caller and in the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from typing import Any

from gateway.adapters.archive.bag import UnreadablePackage, read_checked
from gateway.adapters.archive.storage import PackageStore
from gateway.services.errors import NotFound, ServiceError
from gateway.services.unit_of_work import Context
from gateway.store import archive as packages
from gateway.store import dossiers, notifications

log = logging.getLogger(__name__)


class ArchiveMissing(ServiceError):
    """The body is only in the archive, and the package file is not where the database says."""

    code = "archive_package_missing"


class ArchiveDamaged(ServiceError):
    """The body is only in the archive, and the package file does not match its manifests or the kept hash."""

    code = "archive_package_damaged"


@dataclass(frozen=True)
class StoredFile:
    name: str
    content_type: str
    data: bytes
    sha256: str
    source: str  # "database" or "archive"


def content_type(name: str, data: bytes) -> str:
    if data[:5] == b"%PDF-":
        return "application/pdf"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def read_member(store: PackageStore, package: Any, member: str) -> bytes:
    """One file of the dossier's newest package, checked against its manifests."""
    code = package["dossier_code"]
    if not package["path"]:
        raise ArchiveMissing(f"the archive package of {code} has no file recorded", dossier=code)
    try:
        return read_checked(store.resolve(package["path"]), member)
    except FileNotFoundError:
        log.error("archive package %s of %s is missing from the archive folder", package["path"], code)
        raise ArchiveMissing(f"the archive package of {code} ({package['path']}) is missing from the archive "
                             "folder: restore it from backup", dossier=code, package=package["path"]) from None
    except UnreadablePackage as exc:
        log.error("archive package %s of %s is damaged: %s", package["path"], code, exc)
        raise ArchiveDamaged(f"the archive package of {code} ({package['path']}) is damaged ({exc}): restore it "
                             "from backup", dossier=code, package=package["path"]) from None


def _from_archive(store: PackageStore, package: Any, code: str, member: str, sha256: str,
                  length: int | None) -> bytes:
    if package is None:
        raise ArchiveMissing(f"dossier {code} has no archive package, yet its file was dropped", dossier=code)
    data = read_member(store, package, member)
    data = data[:length] if length is not None else data  # a PDF extended in the package starts as filed
    if hashlib.sha256(data).hexdigest() != sha256:
        log.error("archive package %s of %s: %s is not the file the database recorded", package["path"], code,
                  member)
        raise ArchiveDamaged(f"the archive package of {code} holds another {member} than the one filed: restore "
                             "the package from backup", dossier=code, package=package["path"])
    return data


def dossier_attachment(ctx: Context, store: PackageStore, code: str, attachment_id: str) -> StoredFile:
    with ctx.engine.connect() as conn:
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise NotFound(f"no dossier {code}")
        attachment = next((a for a in dossier["data"].get("attachments") or [] if a.get("id") == attachment_id),
                          None)
        if attachment is None:
            raise NotFound(f"dossier {code} has no attachment {attachment_id!r}")
        package = packages.get(conn, code) if attachment.get("archived") else None
    name = attachment.get("name") or attachment_id
    if attachment.get("content_base64"):
        try:
            data = base64.b64decode(attachment["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise NotFound(f"attachment {attachment_id!r} of {code} has no readable content") from None
        return StoredFile(name, content_type(name, data), data, hashlib.sha256(data).hexdigest(), "database")
    archived = attachment.get("archived")
    if not archived:
        raise NotFound(f"attachment {attachment_id!r} of {code} was filed as a link, not a file: "
                       f"{attachment.get('url')}", url=attachment.get("url"))
    data = _from_archive(store, package, code, archived["path"], archived["sha256"], archived["length"])
    return StoredFile(name, content_type(name, data), data, archived["sha256"], "archive")


def result_document(ctx: Context, store: PackageStore, reference: str, number: int) -> StoredFile:
    """The `number`th file (from 1) attached to a notification: a result document sent to the applicant."""
    with ctx.engine.connect() as conn:
        row = notifications.by_reference(conn, reference)
        if row is None:
            raise NotFound(f"no notification {reference}")
        files = notifications.attachments(conn, row["id"])
        if not 1 <= number <= len(files):
            raise NotFound(f"notification {reference} has no attachment {number} (it has {len(files)})")
        f = files[number - 1]
        package = packages.get(conn, row["dossier_code"]) if f["dropped_at"] and row["dossier_code"] else None
    if f["dropped_at"] is None:
        data = f["content"]
        return StoredFile(f["filename"], f["content_type"], data, hashlib.sha256(data).hexdigest(), "database")
    data = _from_archive(store, package, row["dossier_code"], f["archive_path"], f["sha256"], None)
    return StoredFile(f["filename"], f["content_type"], data, f["sha256"], "archive")
