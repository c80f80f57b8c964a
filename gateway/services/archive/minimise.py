"""Data minimisation: once a dossier's archive package is sealed, verified and older than the grace period
(`archive.minimise_after_days`), the working database drops its attachment and result bodies (Decree 13/2023:
keep no more personal data than needed). Names, hashes, sizes and where the package keeps each file stay; the
API then serves the files from the package (files.py).

Nothing is dropped unless the package file is the one that was verified (its SHA-256 as recorded at sealing) and
holds each body byte for byte: a missing or damaged package keeps everything and flags the package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection

from gateway.adapters.archive.storage import PackageStore
from gateway.config import ArchiveSettings
from gateway.domain.minimisation import Archived, archived_record, kept_because, without_bodies
from gateway.domain.notifications import NotificationState
from gateway.services.archive.files import ArchiveDamaged, ArchiveMissing, read_member
from gateway.services.unit_of_work import Context
from gateway.store import archive as packages
from gateway.store import audit, dossiers, feed, notifications, outbox, server_clock

log = logging.getLogger(__name__)

KEPT_FLAG = "bodies kept in the database: "  # the package's flag while minimisation is refused


def _body(attachment: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode(attachment["content_base64"], validate=True) if attachment.get("content_base64") \
            else None
    except (binascii.Error, ValueError):
        return None


class Minimiser:
    BATCH = 100  # packages a scan looks at: the scan runs on the worker's sweeper thread, which must stay brisk

    def __init__(self, ctx: Context, settings: ArchiveSettings, store: PackageStore) -> None:
        self.ctx = ctx
        self.settings = settings
        self.store = store
        self._after = 0  # the package id the last scan stopped at

    @property
    def grace(self) -> timedelta:
        return timedelta(days=self.settings.minimise_after_days)

    def pending(self, _conn: Connection, now: datetime) -> ColumnElement[bool]:
        """Whether any package is due for minimising (the scan's own condition): the sweeper asks first."""
        return packages.minimising_pending(sealed_before=now - self.grace)

    def minimise_due(self, now: datetime | None = None) -> int:
        """One scan of the worker: drop the bodies of the next due dossiers; how many were minimised. `now` is
        injectable so that tests move the clock instead of waiting a month."""
        now = now or server_clock.now()
        with self.ctx.engine.connect() as conn:
            due = packages.due_for_minimising(conn, sealed_before=now - self.grace, after_id=self._after,
                                              limit=self.BATCH)
        self._after = due[-1]["id"] if len(due) == self.BATCH else 0  # at the end: from the start next time
        return sum(self._try(package, now) for package in due)

    def minimise_dossier(self, code: str, now: datetime | None = None) -> bool:
        """The same for one dossier, if it is due: whether its bodies were dropped now."""
        with self.ctx.engine.connect() as conn:
            package = packages.get(conn, code)
        return package is not None and self._try(package, now or server_clock.now())

    def _try(self, package: Any, now: datetime) -> bool:
        if kept_because(dict(package), now=now, grace=self.grace) is not None:
            return False  # unsealed, unverified, young, or done: the query says so too; checked here once more
        try:
            return self._minimise(package, now=now)
        except (ArchiveMissing, ArchiveDamaged) as exc:
            self._refuse(package, exc.message, now=now)
            return False

    def _minimise(self, package: Any, *, now: datetime) -> bool:
        code = package["dossier_code"]
        with self.ctx.engine.connect() as conn:
            dossier = dossiers.get(conn, code)
            results = notifications.attachments_of_dossier(conn, code)
        if dossier is None:
            return False
        if any(r["state"] == NotificationState.QUEUED and r["dropped_at"] is None for r in results):
            return False  # a result email is still being sent: it needs its files; the next scan looks again
        self._check_package_file(package)
        stamp = now.astimezone(UTC).isoformat()
        archived = self._archived_attachments(package, dossier["data"], stamp)
        dropped_results = self._archived_results(package, results)
        with self.ctx.engine.begin() as conn:
            if not packages.claim_minimising(conn, code, sha256=package["sha256"], now=now):
                return False  # another worker did it, or the package changed (renewed) since it was checked
            dossier = dossiers.get(conn, code, for_update=True)
            data = without_bodies(dossier["data"], archived)
            if data is not None:
                dossiers.replace_data(conn, dossier["id"], data, now=now)
            for item in feed.of_code(conn, code):  # the one-stop feed's copy of the dossier as filed
                if (changed := without_bodies(item["data"], archived)) is not None:
                    feed.replace_data(conn, item["id"], changed)
            for job in outbox.for_key(conn, code):  # national-portal jobs carry snapshots of the dossier
                snapshot = (job["payload"] or {}).get("dossier")
                if isinstance(snapshot, dict) and (changed := without_bodies(snapshot, archived)) is not None:
                    outbox.replace_payload(conn, job["id"], {**job["payload"], "dossier": changed})
            for row_id, (sha256, size, member) in dropped_results.items():
                notifications.drop_body(conn, row_id, sha256=sha256, size=size, archive_path=member, now=now)
            if (package["flag"] or "").startswith(KEPT_FLAG):  # restored since: back to what sealing said
                notes = package["notes"] or []
                packages.change(conn, code, now=now, flag=("sealed; " + "; ".join(notes))[:300] if notes else None)
            dropped = sum(a["length"] for a in archived.values()) + sum(s for _, s, _ in dropped_results.values())
            audit.record(conn, actor="archive", action="archive.minimised", subject=code, at=now, detail={
                "package_version": package["version"], "package_sha256": package["sha256"],
                "attachments": sorted(a["id"] for a in archived.values()), "results": len(dropped_results),
                "bytes": dropped})
        log.info("archive: dropped %d attachment(s) and %d result(s) of %s (%d bytes) from the database",
                 len(archived), len(dropped_results), code, dropped)
        return True

    def _check_package_file(self, package: Any) -> None:
        """The file must be the very one verified at sealing, whole."""
        path = self.store.resolve(package["path"]) if package["path"] else None
        if path is None or not path.is_file():
            raise ArchiveMissing(f"the package file {package['path']} is missing: restore it from backup")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != package["sha256"]:
            raise ArchiveDamaged(f"the package file {package['path']} is not the one sealed and verified (its "
                                 "SHA-256 differs): restore it from backup")

    def _index(self, package: Any, member: str) -> Any:
        try:
            return json.loads(read_member(self.store, package, member))
        except ValueError:
            raise ArchiveDamaged(f"{member} of the package is not JSON") from None

    def _archived_attachments(self, package: Any, data: dict[str, Any], stamp: str) -> Archived:
        """Each attachment body the dossier holds, found byte for byte in the package."""
        index = self._index(package, "data/attachments.json")
        archived: Archived = {}
        for n, attachment in enumerate(data.get("attachments") or [], start=1):
            body = _body(attachment)
            if body is None:
                continue
            entry = index[n - 1] if isinstance(index, list) and n <= len(index) else None
            if not isinstance(entry, dict) or entry.get("id") != attachment.get("id") or not entry.get("path"):
                raise ArchiveDamaged(f"the package does not hold attachment {attachment.get('id')!r}")
            member = f"data/{entry['path']}"
            digest = hashlib.sha256(body).hexdigest()
            packaged = read_member(self.store, package, member)
            if hashlib.sha256(packaged[:len(body)]).hexdigest() != digest:
                raise ArchiveDamaged(f"{member} in the package is not attachment {attachment.get('id')!r} as filed")
            archived[n] = archived_record(attachment_id=attachment["id"], sha256=digest, length=len(body),
                                          path=member, dropped_at=stamp)
        return archived

    def _archived_results(self, package: Any, results: list[Any]) -> dict[int, tuple[str, int, str]]:
        """Each result document still in the database, found byte for byte in the package: row id -> (sha256,
        size, member). The package lists them per notification, in the order they were attached."""
        sent = self._index(package, "data/notifications.json")
        listed = {n.get("reference"): n.get("attachments") or [] for n in sent if isinstance(n, dict)}
        out: dict[int, tuple[str, int, str]] = {}
        position: dict[str, int] = {}
        for row in results:
            m = position[row["reference"]] = position.get(row["reference"], 0) + 1
            if row["dropped_at"] is not None or not row["content"]:
                continue
            files = listed.get(row["reference"], [])
            entry = files[m - 1] if m <= len(files) else None
            if not isinstance(entry, dict) or not entry.get("path"):
                raise ArchiveDamaged(f"the package does not hold result {row['filename']!r} of {row['reference']}")
            member = f"data/{entry['path']}"
            digest = hashlib.sha256(row["content"]).hexdigest()
            if hashlib.sha256(read_member(self.store, package, member)).hexdigest() != digest:
                raise ArchiveDamaged(f"{member} in the package is not result {row['filename']!r} as sent")
            out[row["id"]] = (digest, len(row["content"]), member)
        return out

    def _refuse(self, package: Any, why: str, *, now: datetime) -> None:
        flag = (KEPT_FLAG + why)[:300]
        if package["flag"] == flag:
            return  # said already; the next scan tries again, after an operator restored the file
        log.error("archive: %s keeps its bodies: %s", package["dossier_code"], why)
        with self.ctx.engine.begin() as conn:
            packages.change(conn, package["dossier_code"], now=now, flag=flag)
            audit.record(conn, actor="archive", action="archive.minimise_refused", subject=package["dossier_code"],
                         at=now, detail={"why": why[:500], "package": package["path"]})
