"""Verify an archive package offline: every file against the manifests, the archive timestamps (the package's
RFC 4998 evidence record, or the token chain of a package sealed before batches) against the tag manifest, the TSA
certificates and the trusted roots, and each signed PDF's long-term signatures, with no network.

A verdict per item; a package that cannot even be opened (truncated, not a zip, not a bag) is one FAILED
item saying why, never a traceback. Used by `gateway archive verify` and by the worker after sealing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509

from gateway.adapters.archive.bag import (
    TAGMANIFEST,
    FolderFiles,
    UnreadablePackage,
    check_bag,
    open_bag,
    unzip_to,
    zip_label,
)
from gateway.domain.archive import (
    EVIDENCE_RECORD,
    FAILED,
    NOTE,
    PASSED,
    TIMESTAMP_DIR,
    WARNING,
    Item,
    chain_imprint,
    chain_tokens,
    package_name,
    parse_label,
    safe_name,
)
from gateway.services.progress import Track, untracked
from gateway.signature import evidence_record
from gateway.signature.timestamp_token import (
    ERROR,
    IMPRINT,
    SIGNATURE,
    TRUST,
    TokenCheck,
    TokenInfo,
    TokenJudge,
    check_token,
    read_token,
)
from gateway.store import server_clock

__all__ = ["FAILED", "NOTE", "PASSED", "WARNING", "Item", "PdfCheck", "Report", "verify_built", "verify_package"]


@dataclass
class Report:
    path: str
    code: str | None = None
    items: list[Item] = field(default_factory=list)
    timestamps: list[dict[str, Any]] = field(default_factory=list)  # each token's time, TSA and certificate end
    version: int | None = None  # the package version the file says it holds (its zip label), when it says
    trust: str | None = None  # the trust folder the roots came from, for the report's first line

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(i.verdict != FAILED for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"trust": self.trust, "path": self.path, "code": self.code, "version": self.version, "ok": self.ok,
                "items": [asdict(i) for i in self.items], "timestamps": self.timestamps}

    def text(self) -> str:
        lines = [f"trusting roots from {self.trust}"] if self.trust else []
        lines += [f"{i.verdict:<8} {i.item}: {i.detail}" for i in self.items]
        lines.append(f"{'PASSED' if self.ok else 'FAILED'}  package {self.code or '?'} ({self.path})")
        return "\n".join(lines)


# Checks a PDF's long-term signatures offline: (package path, bytes, trust roots, when) -> items.
PdfCheck = Callable[[str, bytes, list[asn1_x509.Certificate], datetime], list[Item]]


def verify_package(path: Path, roots: list[asn1_x509.Certificate], *, now: datetime | None = None,
                   pdf_check: PdfCheck | None = None, track: Track = untracked, expect: str | None = None) -> Report:
    """`expect` (CODE or CODE.vNNNN) makes what the package holds a check; without it a file named for another
    package gets a note, since renaming a file changes nothing it proves."""
    now = now or server_clock.now()
    report = Report(str(path))
    if not path.exists():
        report.items.append(Item("package", FAILED, "no such file or folder"))
        return report
    with tempfile.TemporaryDirectory(prefix="archive-verify-") as scratch:
        try:
            folder = path if path.is_dir() else unzip_to(path, Path(scratch))
            bag = open_bag(folder)
        except UnreadablePackage as exc:
            report.items.append(Item("package", FAILED, str(exc)))
            return report
        report.code = bag.info.get("External-Identifier")
        # One step each, in this order, so that a caller can show how far the check got.
        files = FolderFiles(folder)
        steps = [partial(_check_files, report, bag), partial(_check_name, report, path, expect),
                 partial(_check_timestamps, report, files, roots, now)]
        if pdf_check is not None:
            steps += [partial(_check_pdf, report, pdf_check, pdf_path, data, roots, now)
                      for pdf_path, data in _signed_pdfs(files)]
        for step in track(steps, len(steps)):
            step()
    return report


def verify_built(path: Path, built: bytes, files: Mapping[str, bytes], code: str,
                 roots: list[asn1_x509.Certificate], *, pdf_check: PdfCheck | None = None,
                 judge: TokenJudge | None = None, now: datetime | None = None) -> Report:
    """The check right after sealing, on the bag's files the package was zipped from (each file's path in the bag
    -> bytes): the stored file must be the built zip byte for byte, the new timestamp must cover the tag manifest
    and chain to a trusted TSA, and each signed PDF must hold its long-term signatures. What it leaves to
    verify_package: unzipping and re-hashing every file against manifests written moments ago from these very
    bytes (a third of the cost of a full verify, for a check of the writer against itself, which
    tests/test_bag_writer.py holds to bagit); minimisation re-reads the stored file anyway before it drops a byte.
    The packages of a batch pass one `judge` and one `now`: their shared token's signature and path are validated
    once."""
    now = now or server_clock.now()
    report = Report(str(path), code)
    stored = path.read_bytes() if path.is_file() else b""
    if stored != built:
        report.items.append(Item("package", FAILED, f"the stored file ({len(stored)} bytes) is not the package "
                                                    f"built ({len(built)} bytes)"))
        return report
    report.items.append(Item("manifest", PASSED, "stored byte for byte as zipped from the bag just made, whose "
                                                 "manifests were written from these files"))
    _check_name(report, path)
    _check_timestamps(report, files, roots, now, judge)
    if pdf_check is not None:
        for pdf_path, data in _signed_pdfs(files):
            _check_pdf(report, pdf_check, pdf_path, data, roots, now)
    return report


def _check_name(report: Report, path: Path, expect: str | None = None) -> None:
    """What the package holds: the dossier of its bag-info.txt (covered by the manifests and the timestamp) and
    the version its zip label names, if that label is for the same dossier. The file name is only compared."""
    label_code, version = parse_label(label) if path.is_file() and (label := zip_label(path)) else (None, None)
    report.version = version if label_code is not None and label_code == report.code else None
    holds = (f"dossier {report.code}" if report.code else "a package naming no dossier") + \
        (f", version {report.version}" if report.version is not None else "")
    if expect is not None:
        want_code, want_version = parse_label(expect)
        if want_code != report.code or want_version not in (None, report.version):
            report.items.append(Item("expected package", FAILED, f"expected {expect}, but the file holds {holds}"))
        else:
            report.items.append(Item("expected package", PASSED, f"the file holds {holds}, as expected"))
        return
    if not path.is_file() or not report.code:
        return
    if report.version is not None:
        usual = package_name(report.code, report.version)
        named_so = path.name == usual
    else:
        usual, named_so = f"{safe_name(report.code)}.vNNNN.zip", path.name.startswith(safe_name(report.code))
    if not named_so:
        report.items.append(Item("file name", NOTE, f"the file is named {path.name} and holds {holds} (its usual "
                                                    f"name: {usual}); a name proves nothing, so nothing fails for it "
                                                    "(--expect CODE[.vNNNN] makes it a check)"))


def _check_pdf(report: Report, pdf_check: PdfCheck, pdf_path: str, data: bytes, roots: list[asn1_x509.Certificate],
               now: datetime) -> None:
    # Runs after the timestamp step, so the time the chain proves is known by now.
    report.items += pdf_check(pdf_path, data, roots, _proven_at(report) or now)


def _proven_at(report: Report) -> datetime | None:
    """When the package's timestamp chain, if it holds, proves the files existed: its first token's time. The
    signed PDFs are judged then, with the revocation data they carry (RFC 4998's verification at the archive
    timestamp's time): after their own document timestamp's TSA certificate ends, the chain vouches for them."""
    stamps = [i for i in report.items if i.item.startswith(f"{TIMESTAMP_DIR}/")]
    if not stamps or any(i.verdict == FAILED for i in stamps) or not report.timestamps:
        return None
    return datetime.fromisoformat(report.timestamps[0]["time"])


def _check_files(report: Report, bag: Any) -> None:
    problems = check_bag(bag)
    for name, problem in problems:
        report.items.append(Item(name, FAILED, problem))
    if not problems:
        count = len(bag.payload_entries())
        report.items.append(Item("manifest", PASSED, f"all {count} files match the manifest and the tag manifest"))


def _check_timestamps(report: Report, files: Mapping[str, bytes], roots: list[asn1_x509.Certificate],
                      now: datetime, judge: TokenJudge | None = None) -> None:
    tokens = chain_tokens(files)
    record = files.get(EVIDENCE_RECORD)
    if not tokens and record is None:
        report.items.append(Item("timestamp", FAILED, "the package has no archive timestamp: it was never sealed"))
        return
    tagmanifest = files.get(TAGMANIFEST)
    if tagmanifest is None:
        report.items.append(Item("timestamp", FAILED, f"{TAGMANIFEST} is missing: nothing to check the seal against"))
        return
    if record is not None:
        if tokens:  # one notion of evidence: a token beside the record is no part of it
            report.items.append(Item(tokens[0][0], FAILED, f"a token beside {EVIDENCE_RECORD}: a package holds one "
                                                           "or the other, so one of them was added"))
        _check_evidence(report, record, tagmanifest, judge or TokenJudge(roots), now)
        return
    _check_token_chain(report, tagmanifest, tokens, roots, now)


def _check_evidence(report: Report, der: bytes, tagmanifest: bytes, judge: TokenJudge, now: datetime) -> None:
    """The package's RFC 4998 evidence record: one item per archive timestamp, oldest first."""
    for v in evidence_record.check(der, tagmanifest, judge, now):
        name = f"{EVIDENCE_RECORD} #{v.number}"
        if v.info is not None:
            report.timestamps.append({
                "token": name, "time": v.info.gen_time.isoformat(), "digest": v.info.digest, "tsa": v.info.tsa,
                "judged_at": v.judged_at.isoformat() if v.judged_at else None, "chain": v.chain, "kind": v.kind,
                "tree_levels": v.levels,
                "tsa_not_after": v.info.tsa_not_after.isoformat() if v.info.tsa_not_after else None,
                "valid_until": v.info.valid_until.isoformat() if v.info.valid_until else None})
        report.items.append(_evidence_item(name, v))


def _evidence_item(name: str, v: evidence_record.Verdict) -> Item:
    covers = {"initial": "the tag manifest" + (f" through a hash tree of its batch ({v.levels} level"
                                               f"{'s' if v.levels != 1 else ''} to the root)" if v.levels else ""),
              "timestamp renewal": "the archive timestamp before it (timestamp renewal)",
              "hash-tree renewal": "the tag manifest and the chains before it (hash-tree renewal)"}[v.kind]
    if v.info is None:
        return Item(name, FAILED, f"the evidence record cannot be read: {v.detail}")
    when = v.info.gen_time.astimezone(UTC).isoformat()
    at = v.judged_at.isoformat() if v.judged_at else "?"
    return {
        None: Item(name, PASSED, f"{v.algorithm} timestamp of {when} by {v.info.tsa} covers {covers} (judged at "
                                 f"{at})"),
        evidence_record.NOT_IN_TREE: Item(name, FAILED, f"the timestamp of {when} does not cover {covers}: "
                                                        f"{v.detail}. A file of the package was changed after "
                                                        "sealing, or the proof belongs to another package"),
        evidence_record.ROOT: Item(name, FAILED, f"the timestamp of {when} does not cover {covers}: {v.detail}. A "
                                                 "hash of the tree was changed, or the token belongs to another batch"),
        evidence_record.ALGORITHM: Item(name, FAILED, f"the timestamp of {when}: {v.detail}"),
        evidence_record.UNLISTED: Item(name, FAILED, f"the timestamp of {when}: {v.detail}"),
        ERROR: Item(name, FAILED, f"the timestamp cannot be checked: {v.detail}"),
        SIGNATURE: Item(name, FAILED, f"the timestamp's signature is invalid (forged or damaged token) ({when})"),
        TRUST: Item(name, FAILED, f"the TSA certificate {v.info.tsa} is not trusted at {at[:10]} ({v.detail}): "
                                  "forged by an unknown TSA, or its certificate ended before the next archive "
                                  "timestamp was added"),
    }[v.problem]


def _check_token_chain(report: Report, tagmanifest: bytes, tokens: list[tuple[str, bytes]],
                       roots: list[asn1_x509.Certificate], now: datetime) -> None:
    """A package sealed before evidence records: token k over H(tag manifest || tokens 1 .. k-1)."""
    parsed: list[tuple[str, cms.ContentInfo | None, TokenInfo | None, str]] = []
    for name, der in tokens:
        try:
            parsed.append((name, *read_token(der), ""))
        except ValueError as exc:  # a damaged token is that token's failure
            parsed.append((name, None, None, str(exc)))
    for k, (name, token, info, broken) in enumerate(parsed):
        if token is None or info is None:
            report.items.append(Item(name, FAILED, broken))
            continue
        earlier = [der for _, der in tokens[:k]]

        def expected(algorithm: str, earlier: list[bytes] = earlier) -> bytes:
            return chain_imprint(tagmanifest, earlier, algorithm)

        # Each token is judged at the time the next one proves it existed; the newest at the present.
        later = next((i.gen_time for _, _, i, _ in parsed[k + 1:] if i is not None), None)
        at = later or now
        report.timestamps.append({"token": name, "time": info.gen_time.isoformat(), "digest": info.digest,
                                  "tsa": info.tsa, "judged_at": at.isoformat(),
                                  "tsa_not_after": info.tsa_not_after.isoformat() if info.tsa_not_after else None,
                                  "valid_until": info.valid_until.isoformat() if info.valid_until else None})
        check = check_token(token, expected, roots, at, covered=later is not None)
        report.items.append(_token_item(name, info, check, at, k == 0))


def _token_item(name: str, info: TokenInfo, check: TokenCheck, at: datetime, first: bool) -> Item:
    what = "the tag manifest" if first else "the tag manifest and the earlier timestamps"
    when = info.gen_time.astimezone(UTC).isoformat()
    return {
        None: Item(name, PASSED, f"timestamp of {when} by {info.tsa} covers {what} (judged at {at.isoformat()})"),
        ERROR: Item(name, FAILED, f"the timestamp cannot be checked: {check.detail}"),
        IMPRINT: Item(name, FAILED, f"the timestamp of {when} does not cover {what}: a file of the package was "
                                    "changed after sealing, or the token belongs to another package"),
        SIGNATURE: Item(name, FAILED, f"the timestamp's signature is invalid (forged or damaged token) ({when})"),
        TRUST: Item(name, FAILED, f"the TSA certificate {info.tsa} is not trusted at {at.date().isoformat()} "
                                  f"({check.detail}): forged by an unknown TSA, or its certificate ended before the "
                                  "next archive timestamp was added"),
    }[check.problem]


def _signed_pdfs(files: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    try:
        index = json.loads(files.get("data/attachments.json") or b"[]")
    except (ValueError, OSError):
        return []
    out = []
    for entry in index if isinstance(index, list) else []:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not entry.get("signed"):
            continue
        data = files.get(f"data/{rel}")
        if data is not None:
            out.append((f"data/{rel}", data))
    return out
