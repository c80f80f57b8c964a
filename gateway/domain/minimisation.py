"""Data minimisation (Decree 13/2023/NĐ-CP: keep no more personal data than needed), without I/O.

Once a dossier's package is sealed, verified and past its grace period, the working database forgets the
bodies of its attachments: every stored copy of an attachment (the dossier, its feed item, its jobs'
snapshots) loses `content_base64` and gains `archived`, which says where the package keeps the file, its
SHA-256 and length as filed, and when the body was dropped. Names, ids, hashes and sizes stay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .archive import SEALED

# attachment position in the dossier (1-based, as the package numbers them) -> its `archived` record (with its id)
Archived = dict[int, dict[str, Any]]


def archived_record(*, attachment_id: str, sha256: str, length: int, path: str, dropped_at: str) -> dict[str, Any]:
    """`path`: the file's member name in the package zip; `sha256` and `length`: the body as filed (a signed PDF
    extended to long-term validation in the package starts with these bytes)."""
    return {"id": attachment_id, "sha256": sha256, "length": length, "path": path, "dropped_at": dropped_at}


def without_bodies(data: dict[str, Any], archived: Archived) -> dict[str, Any] | None:
    """`data` (a dossier as filed, or a snapshot of one) with the archived bodies dropped; None when it holds
    none of them (nothing to rewrite). An attachment is matched by position and id, so a list that differs from
    the dossier's is left alone rather than stripped of the wrong file."""
    attachments = data.get("attachments")
    if not isinstance(attachments, list):
        return None
    ids = {n: record.get("id") for n, record in archived.items()}
    out, changed = [], False
    for n, attachment in enumerate(attachments, start=1):
        if (n in archived and isinstance(attachment, dict) and attachment.get("content_base64")
                and attachment.get("id") == ids[n]):
            attachment = {k: v for k, v in attachment.items() if k != "content_base64"}
            attachment["archived"] = {k: v for k, v in archived[n].items() if k != "id"}
            changed = True
        out.append(attachment)
    return {**data, "attachments": out} if changed else None


def kept_because(package: dict[str, Any], *, now: datetime, grace: timedelta) -> str | None:
    """Why a dossier keeps its bodies now (its package row: state, verified_at, sealed_at, minimised_at), or None
    when they may go: only a sealed package that verified, sealed longer than the grace period ago."""
    if package.get("minimised_at") is not None:
        return "already dropped"
    if package.get("state") != SEALED or package.get("sealed_at") is None:
        return "the package is not sealed"
    if package.get("verified_at") is None:
        return "the package did not verify"
    if now < package["sealed_at"] + grace:
        return f"within the grace period, until {(package['sealed_at'] + grace).isoformat()}"
    return None
