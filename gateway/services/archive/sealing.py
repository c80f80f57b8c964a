"""Sealing the archive packages of finished dossiers, a batch under one archive timestamp.

A batch is the archive.build jobs a worker claims together (up to `archive.batch_size`, once the oldest has waited
`archive.batch_wait_seconds`: runner.QueuePolicy). Each package is made as a BagIt bag from what the gateway holds
(contents.py); one RFC 3161 token is asked for the root of an RFC 4998 hash tree over their tag manifests; each
package gets its evidence record (its reduced hash tree and the shared token), is zipped, written once and checked
(verify_built: the token's signature and path validated once for the batch); the batch is recorded in one
transaction.

What fails waits, and nothing is sealed twice: a package that cannot be made (OCSP down for its PDF) waits alone,
flagged; the TSA down fails the batch's packages, whose jobs come back together (the claim takes a due job with the
ones behind it); a worker killed mid-batch leaves, under package names, whole files or none, and the retry adopts a
file stored but not recorded once a full verify_package passes, or makes the package anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from sqlalchemy import RowMapping

from gateway.adapters.archive import BUILD, QUEUE
from gateway.adapters.archive.bag import TAGMANIFEST, read_checked, zip_bag
from gateway.adapters.archive.bag_writer import bag_files
from gateway.adapters.archive.storage import AlreadyStored, PackageStore
from gateway.adapters.archive.tsa import TsaClient
from gateway.adapters.base import AdapterError, PermanentError, RetryableError
from gateway.config import ArchiveSettings
from gateway.domain import archive as rules
from gateway.domain import evidence
from gateway.domain.archive import DIGEST, EVIDENCE_RECORD, FAILING, SEALED
from gateway.services.archive.contents import BatchRows, Chain, ContentsReader, Extend, json_file
from gateway.services.archive.verify import PdfCheck, Report, verify_built, verify_package
from gateway.services.unit_of_work import Context
from gateway.signature import evidence_record
from gateway.signature.timestamp_token import TokenJudge
from gateway.store import archive as packages
from gateway.store import audit, outbox, server_clock

log = logging.getLogger(__name__)


@dataclass
class Made:
    """A package made and waiting for the batch's timestamp: its bag's files (path in the bag -> bytes)."""

    row: RowMapping
    version: int
    files: dict[str, bytes]
    notes: list[str]
    dossier_bytes: int
    years: int

    @property
    def code(self) -> str:
        return self.row["dossier_code"]

    @property
    def tagmanifest(self) -> bytes:
        return self.files[TAGMANIFEST]  # what the batch's hash tree takes

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


@dataclass(frozen=True)
class Stored:
    """A package file written and checked, to record: what record_versions writes for it."""

    code: str
    version: int
    path: Path
    sha256: str
    report: Report
    notes: list[str]
    dossier_bytes: int | None = None
    years: int | None = None
    adopted: bool = False


class Archive:
    def __init__(self, ctx: Context, settings: ArchiveSettings, tsa: TsaClient, store: PackageStore,
                 roots: list[asn1_x509.Certificate], verify_pdf: Callable[[bytes], dict[str, Any]] | None = None,
                 extend: Extend | None = None, pdf_check: PdfCheck | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self.tsa = tsa
        self.store = store
        self.roots = roots
        self.reader = ContentsReader(verify_pdf, extend)
        self.pdf_check = pdf_check

    # The batch -----------------------------------------------------------------------------------

    def seal_many(self, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
        """The archive.build jobs a worker claimed, sealed in batches of `archive.batch_size`: an outcome per job
        (None: sealed, or nothing left to do). A claim takes at least jobs.batch_size of them, so that small
        batches do not each pay a claim and an outcome transaction of their own."""
        size = self.settings.batch_size
        return [outcome for start in range(0, len(payloads), size)
                for outcome in self._seal_batch(payloads[start:start + size])]

    def _seal_batch(self, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
        now = server_clock.now()
        codes = [p["code"] for p in payloads]
        with self.ctx.engine.connect() as conn:
            rows = packages.of_codes(conn, codes)
            due = [row for row in rows.values() if row["state"] != SEALED]
            batch = BatchRows.read(conn, [row["dossier_id"] for row in due], [row["dossier_code"] for row in due])
        outcome: dict[str, AdapterError | None] = {}
        made: list[Made] = []
        held, budget = 0, self.settings.batch_memory_mb * 2**20
        chain: Chain | None = None
        for code in dict.fromkeys(codes):
            row = rows.get(code)
            if row is None:
                outcome[code] = PermanentError(f"no archive package is due for {code}")
            elif row["state"] == SEALED:
                outcome[code] = None  # a repeated job: the package exists
            else:
                try:
                    if chain is None:
                        with self.ctx.engine.connect() as conn:
                            chain = Chain.now(conn)  # the audit chain at sealing: the same for the batch
                    package = self._make(row, now, chain, batch)
                except Exception as exc:  # noqa: BLE001 - this package waits; the others go on
                    outcome[code] = self._failed([row], exc)[code]
                    continue
                if package is None:
                    outcome[code] = None  # adopted: stored by a worker that died before recording it
                    continue
                made.append(package)
                held += package.size
                if held >= budget:  # the packages made are held in memory until their timestamp: no more than this
                    outcome.update(self._seal(made, now))
                    made, held = [], 0
        if made:
            outcome.update(self._seal(made, now))
        return [outcome[c] for c in codes]

    def _make(self, row: RowMapping, now: datetime, chain: Chain, batch: BatchRows) -> Made | None:
        """The package's bag, made in memory; None when a whole file of it was stored and is adopted."""
        code = row["dossier_code"]
        self.store.sweep(code)  # what a killed build left behind
        version = row["version"] + 1
        latest = self.store.latest(code)
        if latest is not None and latest[0] >= version:
            # A worker stored this package and died before recording it: adopt it if it verifies whole.
            report = self.verify(latest[1])
            if report.ok:
                self.record_versions([Stored(code, latest[0], latest[1], sha256_of(latest[1]), report,
                                             self._notes_of(latest[1]), row["dossier_bytes"], adopted=True)])
                return None
            version = latest[0] + 1  # never overwritten: the broken file stays for an operator to look at
        with self.ctx.engine.connect() as conn:
            contents = self.reader.read(conn, code, chain, batch)
        dossier = contents.dossier
        if contents.retry:
            raise RetryableError("; ".join(contents.retry)[:500])
        years = self.settings.retention_years(dossier["procedure_code"])
        meta = rules.metadata(dict(dossier), final_at=row["final_at"], retention_years=years,
                              agency=self.settings.agency, agency_code=self.settings.agency_code,
                              documents=contents.documents, notes=contents.notes)
        contents.files["metadata.json"] = json_file(meta)
        files = bag_files(contents.files, rules.bag_info(meta, sealed_at=now), DIGEST)
        return Made(row, version, files, contents.notes, contents.dossier_bytes, years)

    def _seal(self, made: list[Made], now: datetime) -> dict[str, AdapterError | None]:
        """One timestamp for the packages made; each written and checked; the batch recorded in one transaction."""
        algorithm = self.settings.timestamp_digest
        tree = evidence.HashTree.build([evidence.digest(algorithm, m.tagmanifest) for m in made], algorithm)
        try:
            token = self.tsa.stamp(tree.root, algorithm)
        except Exception as exc:  # noqa: BLE001 - the TSA down: the whole batch waits, and is tried again together
            return self._failed([m.row for m in made], exc)
        judge = TokenJudge(self.roots)  # the shared token's signature and path: validated once
        out: dict[str, AdapterError | None] = {}
        stored: list[Stored] = []
        for package, reduced in zip(made, tree.reduced, strict=True):
            try:
                package.files[EVIDENCE_RECORD] = evidence_record.new_record(algorithm, token, reduced)
                data = zip_bag(package.files, rules.package_label(package.code, package.version))
                try:
                    path = self.store.write_once(package.code, package.version, data)
                except AlreadyStored:
                    raise RetryableError(f"package version {package.version} of {package.code} appeared meanwhile; "
                                         "trying again") from None
                report = verify_built(path, data, package.files, package.code, self.roots, pdf_check=self.pdf_check,
                                      judge=judge, now=now)
            except Exception as exc:  # noqa: BLE001 - this package waits; the batch's others are recorded
                out.update(self._failed([package.row], exc))
                continue
            stored.append(Stored(package.code, package.version, path, hashlib.sha256(data).hexdigest(), report,
                                 package.notes, package.dossier_bytes, package.years))
        self.record_versions(stored, batch=len(made))
        return {**out, **{s.code: None for s in stored}}

    def _failed(self, rows: list[RowMapping], exc: Exception) -> dict[str, AdapterError]:
        """Flag the packages as waiting (failed) with why; the error each job answers (retryable unless it says)."""
        now = server_clock.now()
        flag = f"not sealed yet: {exc}"[:300]
        with self.ctx.engine.begin() as conn:
            for row in rows:
                packages.change_unless_sealed(conn, row["dossier_code"], now=now, state=FAILING,
                                              attempts=row["attempts"] + 1, flag=flag,
                                              last_error=f"{type(exc).__name__}: {exc}"[:2000])
        error = exc if isinstance(exc, RetryableError | PermanentError) else RetryableError(
            f"{type(exc).__name__}: {exc}")
        return {row["dossier_code"]: error for row in rows}

    def verify(self, path: Path) -> Report:
        return verify_package(path, self.roots, pdf_check=self.pdf_check)

    def _notes_of(self, path: Path) -> list[str]:
        meta = json.loads(read_checked(path, "data/metadata.json"))  # one file, not the whole package
        note = next((f["value"] for f in meta["fields"] if f["key"] == "chu_giai"), None)
        return note.split("; ") if note else []

    def record_versions(self, stored: list[Stored], *, renewal: bool = False, batch: int | None = None) -> None:
        """Record package files just stored (sealed, or a renewal's new version) with what their checks found, in
        one transaction. Their time is now, when they are stored and checked: the end of "final status to sealed"."""
        if not stored:
            return
        now = server_clock.now()
        changes = [(s, _values(s, self.store.relative(s.path), now, renewal)) for s in stored]
        with self.ctx.engine.begin() as conn:
            rows = packages.of_codes(conn, [s.code for s in stored])
            for s, values in changes:
                if s.years is not None:
                    values["retention_years"] = s.years
                    values["retain_until"] = rules.retain_until(rows[s.code]["final_at"], s.years)
                packages.change(conn, s.code, now=now, **values)
            audit.record_many(conn, [{
                "actor": "archive", "action": "archive.renewed" if renewal else "archive.sealed", "subject": s.code,
                "at": now, "detail": {"version": s.version, "sha256": s.sha256, "verified": s.report.ok,
                                      "adopted": s.adopted, "timestamps": values["timestamps"],
                                      **({"batch": batch} if batch is not None else {})}} for s, values in changes])
        for s, values in changes:
            log.info("archive package %s v%d %s (%d bytes, verified %s%s)", s.code, s.version,
                     "renewed" if renewal else "sealed", values["size"], s.report.ok,
                     f", batch of {batch}" if batch is not None else "")

    # Jobs for the worker -------------------------------------------------------------------------

    def schedule_unsealed(self) -> int:
        """A package is never given up: its build job, buried after its attempts (a long TSA or OCSP outage),
        is revived at each scan, and an unsealed package without a job gets one. How many jobs were sent."""
        now = server_clock.now()
        with self.ctx.engine.begin() as conn:
            rows = packages.unsealed(conn)
            codes = {r["dossier_code"] for r in rows}
            dead = [j for j in outbox.list_by_state(conn, outbox.DEAD, queue=QUEUE, limit=500)
                    if j["ordering_key"] in codes]
            revived = [j["id"] for j in dead if outbox.revive(conn, j["id"], now=now) is not None]
            busy = outbox.keys_with_unfinished(conn, QUEUE, sorted(codes))
            due = [r for r in rows if r["dossier_code"] not in busy]
            ids = outbox.enqueue_many(conn, [(outbox.NewJob(QUEUE, BUILD, r["dossier_code"],
                                                            {"code": r["dossier_code"]}), True) for r in due],
                                      now=now, max_attempts=self.ctx.jobs.max_attempts) if due else []
        sent = [(i, QUEUE) for i in [*revived, *ids]]
        if sent:
            self.ctx.publish_after_commit(sent)
        return len(sent)


def _values(s: Stored, relative: str, now: datetime, renewal: bool) -> dict[str, Any]:
    report = s.report
    newest = report.timestamps[-1] if report.timestamps else {}
    failed = [f"{i.item}: {i.detail}" for i in report.items if i.verdict == "FAILED"]
    flag = ("stored, but it does not verify: " + failed[0])[:300] if failed else \
        ("sealed; " + "; ".join(s.notes))[:300] if s.notes else None
    values: dict[str, Any] = {
        "state": SEALED, "version": s.version, "path": relative, "sha256": s.sha256, "size": s.path.stat().st_size,
        "timestamp_at": _parse(newest.get("time")),
        # Renew before the first of the newest token's certificates ends (the TSA's, or its CA's).
        "tsa_not_after": _parse(newest.get("valid_until") or newest.get("tsa_not_after")),
        "timestamp_digest": newest.get("digest"), "timestamps": len(report.timestamps),
        "verified_at": now if report.ok else None, "flag": flag, "last_error": None, "renew_after": None,
    }
    if not renewal:
        values.update(sealed_at=now, notes=s.notes)
    if s.dossier_bytes is not None:
        values["dossier_bytes"] = s.dossier_bytes
    return values


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
