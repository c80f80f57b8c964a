"""Renewing a package's archive timestamp, so it stays verifiable for its whole retention period.

Before the newest token's certificates end (`archive.renew_before_days`), or once its imprint algorithm is
configured weak (`archive.weak_digests`), a job adds an archive timestamp to the package's own evidence record
(RFC 4998 5.2): a Timestamp Renewal over its newest token while the hash algorithm stays, a Hash-Tree Renewal over
its tag manifest and every chain so far with a new one (signature/evidence_record.py). A package sealed in a batch
is renewed alone: the new token covers that package's evidence, not its batch. A package sealed before evidence
records gets one more token in its chain, over its tag manifest and every earlier token (domain/archive.py
chain_imprint). Either way the result is a new package version, written once like the first: <code>.v0002.zip
beside .v0001.zip, which is never touched. `archive verify` then judges each older token at the time the next one
proves, so the chain holds after the older TSA certificates end.

A renewal that cannot help (the TSA's own certificate ends as soon, the package no longer verifies) writes
nothing, flags the package and waits `renew_retry_hours`; a TSA that is down makes the job retry.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection

from gateway.adapters.archive import QUEUE, RENEW
from gateway.adapters.archive.bag import TAGMANIFEST, unzip, zip_bag
from gateway.adapters.archive.storage import AlreadyStored
from gateway.adapters.base import RetryableError
from gateway.domain import archive as rules
from gateway.domain.archive import EVIDENCE_RECORD, SEALED
from gateway.services.archive.sealing import Archive, Stored, sha256_of
from gateway.signature import evidence_record
from gateway.signature.timestamp_token import read_token
from gateway.store import archive as packages
from gateway.store import outbox, server_clock

log = logging.getLogger(__name__)


class ArchiveRenewal:
    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.settings = archive.settings

    def reason(self, row: Any, now: datetime) -> str | None:
        """Why the package must be renewed now, or None (not due, or told to wait)."""
        if row["state"] != SEALED or (row["renew_after"] is not None and row["renew_after"] > now):
            return None
        return rules.renewal_due(tsa_not_after=row["tsa_not_after"], digest=row["timestamp_digest"], now=now,
                                 renew_before=timedelta(days=self.settings.renew_before_days),
                                 weak_digests=self.settings.weak_digests)

    # The worker's periodic scan ------------------------------------------------------------------

    def pending(self, _conn: Connection, now: datetime) -> ColumnElement[bool]:
        """Whether any package is due for renewal (the scan's own condition): the sweeper asks first."""
        return packages.renewal_pending(before=now + timedelta(days=self.settings.renew_before_days),
                                        weak=self.settings.weak_digests, now=now)

    def schedule(self) -> int:
        """A renewal job for each package due that has none under way; how many were sent."""
        now = server_clock.now()
        ctx = self.archive.ctx
        with ctx.engine.begin() as conn:
            rows = packages.due_for_renewal(conn, before=now + timedelta(days=self.settings.renew_before_days),
                                            weak=self.settings.weak_digests, now=now)
            codes = sorted(r["dossier_code"] for r in rows)
            busy = outbox.keys_with_unfinished(conn, QUEUE, codes)
            due = [c for c in codes if c not in busy]
            ids = outbox.enqueue_many(conn, [(outbox.NewJob(QUEUE, RENEW, c, {"code": c}), True) for c in due],
                                      now=now, max_attempts=ctx.jobs.max_attempts) if due else []
        if ids:
            ctx.publish_after_commit([(i, QUEUE) for i in ids])
        return len(ids)

    # The job -----------------------------------------------------------------------------------

    def renew_one(self, payload: dict[str, Any]) -> None:
        code = payload["code"]
        now = server_clock.now()
        with self.archive.ctx.engine.connect() as conn:
            row = packages.get(conn, code)
        reason = self.reason(row, now) if row is not None else None
        if row is None or reason is None:
            return  # renewed meanwhile, no longer due, or nothing sealed (the build job seals it first)
        store = self.archive.store
        store.sweep(code)
        version = row["version"] + 1
        latest = store.latest(code)
        if latest is not None and latest[0] > row["version"]:
            # A worker stored a renewal and died before recording it: adopt it if it verifies and adds a token.
            report = self.archive.verify(latest[1])
            if report.ok and len(report.timestamps) > row["timestamps"]:
                self.archive.record_versions([Stored(code, latest[0], latest[1], sha256_of(latest[1]), report,
                                                     row["notes"] or [], adopted=True)], renewal=True)
                return
            version = latest[0] + 1  # never overwritten: the broken file stays for an operator to look at
        current = store.resolve(row["path"])
        report = self.archive.verify(current)
        if not report.ok:
            failed = next(f"{i.item}: {i.detail}" for i in report.items if i.verdict == "FAILED")
            self._wait(code, row["version"], now, f"{reason}, but the package does not verify, not renewed: {failed}")
            return
        try:
            data = self._with_new_token(code, version, current, row, reason, now)
        except RetryableError as exc:
            with self.archive.ctx.engine.begin() as conn:
                packages.change_at_version(conn, code, row["version"], now=now,
                                           flag=f"renewal due ({reason}), waiting: {exc}"[:300])
            raise
        if data is None:
            return
        try:
            path = store.write_once(code, version, data)
        except AlreadyStored:
            raise RetryableError(f"package version {version} of {code} appeared meanwhile; trying again") from None
        self.archive.record_versions([Stored(code, version, path, hashlib.sha256(data).hexdigest(),
                                             self.archive.verify(path), row["notes"] or [])], renewal=True)
        with self.archive.ctx.engine.connect() as conn:
            renewed = packages.get(conn, code)
        if (still := self.reason(renewed, now)) is not None:  # the new TSA certificate ends within the margin too
            self._wait(code, version, now, f"renewed to version {version}, but {still} as well: a TSA certificate "
                                           "that lasts longer is needed")

    def _with_new_token(self, code: str, version: int, current: Path, row: Any, reason: str,
                        now: datetime) -> bytes | None:
        """The package with one more token over the chain (zip bytes), or None when that would not help."""
        files = unzip(current)
        tagmanifest = files[TAGMANIFEST]
        digest = self.settings.timestamp_digest
        record = files.get(EVIDENCE_RECORD)
        if record is not None:  # RFC 4998 5.2: the package's own evidence record gets the new archive timestamp
            renewal = evidence_record.renewal(record, tagmanifest, digest)
            token = self.archive.tsa.stamp(renewal.imprint, digest)
        else:  # sealed before evidence records: one more token in its chain
            tokens = [token for _, token in rules.chain_tokens(files)]
            token = self.archive.tsa.stamp(rules.chain_imprint(tagmanifest, tokens, digest), digest)
        _, info = read_token(token)
        if not rules.renewal_helps(old_not_after=row["tsa_not_after"], old_digest=row["timestamp_digest"],
                                   new_not_after=info.valid_until, new_digest=info.digest,
                                   weak_digests=self.settings.weak_digests):
            ends = info.valid_until.date().isoformat() if info.valid_until else "?"
            self._wait(code, row["version"], now, f"{reason}, but the TSA's new timestamp would not last longer "
                                                  f"({info.tsa}, certificates ending {ends}): not renewed")
            return None
        if record is not None:
            files[EVIDENCE_RECORD] = evidence_record.renewed(record, renewal, token)
        else:
            files[rules.token_name(len(tokens) + 1)] = token
        return zip_bag(files, rules.package_label(code, version))

    def _wait(self, code: str, version: int, now: datetime, why: str) -> None:
        until = now + timedelta(hours=self.settings.renew_retry_hours)
        log.warning("archive package %s: %s; next try after %s", code, why, until.isoformat())
        with self.archive.ctx.engine.begin() as conn:
            packages.change_at_version(conn, code, version, now=now, renew_after=until, flag=why[:300])
