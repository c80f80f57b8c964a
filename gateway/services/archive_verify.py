"""Verify an archive package offline: every file against the manifests, the archive timestamp chain against
the TSA certificates and the trusted roots, and each signed PDF's long-term signatures, with no network.

A verdict per item; a package that cannot even be opened (truncated, not a zip, not a bag) is one FAILED
item saying why, never a traceback. Used by `gateway archive verify` and by the worker after sealing.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from gateway.adapters.archive.bag import TAGMANIFEST, UnreadablePackage, check_bag, open_bag, unzip_to
from gateway.domain.archive import (
    FAILED,
    PASSED,
    TIMESTAMP_DIR,
    TOKEN_SUFFIX,
    WARNING,
    Item,
    chain_imprint,
    safe_name,
)

from .progress import Track, untracked

__all__ = ["FAILED", "PASSED", "WARNING", "Item", "PdfCheck", "Report", "verify_package"]


@dataclass
class Report:
    path: str
    code: str | None = None
    items: list[Item] = field(default_factory=list)
    timestamps: list[dict[str, Any]] = field(default_factory=list)  # each token's time, TSA and certificate end

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(i.verdict != FAILED for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "code": self.code, "ok": self.ok, "items": [asdict(i) for i in self.items],
                "timestamps": self.timestamps}

    def text(self) -> str:
        lines = [f"{i.verdict:<8} {i.item}: {i.detail}" for i in self.items]
        lines.append(f"{'PASSED' if self.ok else 'FAILED'}  package {self.code or '?'} ({self.path})")
        return "\n".join(lines)


# Checks a PDF's long-term signatures offline: (package path, bytes, trust roots, when) -> items.
PdfCheck = Callable[[str, bytes, list[asn1_x509.Certificate], datetime], list[Item]]


def verify_package(path: Path, roots: list[asn1_x509.Certificate], *, now: datetime | None = None,
                   pdf_check: PdfCheck | None = None, track: Track = untracked) -> Report:
    now = now or datetime.now(UTC)
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
        steps = [partial(_check_files, report, bag), partial(_check_name, report, path),
                 partial(_check_timestamps, report, folder, roots, now)]
        if pdf_check is not None:
            steps += [partial(_check_pdf, report, pdf_check, pdf_path, data, roots, now)
                      for pdf_path, data in _signed_pdfs(folder)]
        for step in track(steps, len(steps)):
            step()
    return report


def _check_name(report: Report, path: Path) -> None:
    if path.is_file() and report.code and not path.name.startswith(safe_name(report.code)):
        report.items.append(Item("file name", FAILED, f"the file is named {path.name} but holds the package of "
                                                      f"dossier {report.code}: renamed"))


def _check_pdf(report: Report, pdf_check: PdfCheck, pdf_path: str, data: bytes, roots: list[asn1_x509.Certificate],
               now: datetime) -> None:
    report.items += pdf_check(pdf_path, data, roots, now)


def _check_files(report: Report, bag: Any) -> None:
    problems = check_bag(bag)
    for name, problem in problems:
        report.items.append(Item(name, FAILED, problem))
    if not problems:
        count = len(bag.payload_entries())
        report.items.append(Item("manifest", PASSED, f"all {count} files match the manifest and the tag manifest"))


def _tokens(folder: Path) -> list[tuple[str, bytes]]:
    tokens_dir = folder / TIMESTAMP_DIR
    if not tokens_dir.is_dir():
        return []
    return [(f"{TIMESTAMP_DIR}/{p.name}", p.read_bytes()) for p in sorted(tokens_dir.iterdir())
            if p.name.endswith(TOKEN_SUFFIX) and p.is_file()]


def _check_timestamps(report: Report, folder: Path, roots: list[asn1_x509.Certificate], now: datetime) -> None:
    tagmanifest_path = folder / TAGMANIFEST
    tokens = _tokens(folder)
    if not tokens:
        report.items.append(Item("timestamp", FAILED, "the package has no archive timestamp: it was never sealed"))
        return
    if not tagmanifest_path.is_file():
        report.items.append(Item("timestamp", FAILED, f"{TAGMANIFEST} is missing: nothing to check the seal against"))
        return
    tagmanifest = tagmanifest_path.read_bytes()
    parsed: list[tuple[str, cms.ContentInfo | None, datetime | None, str]] = []
    for name, der in tokens:
        try:
            token = cms.ContentInfo.load(der)
            info: tsp.TSTInfo = token["content"]["encap_content_info"]["content"].parsed
            parsed.append((name, token, info["gen_time"].native, ""))
        except Exception as exc:  # noqa: BLE001 - a damaged token is that token's failure
            parsed.append((name, None, None, f"not an RFC 3161 token: {type(exc).__name__}"))
    for k, (name, token, gen_time, broken) in enumerate(parsed):
        if token is None or gen_time is None:
            report.items.append(Item(name, FAILED, broken))
            continue
        expected = chain_imprint(tagmanifest, [der for _, der in tokens[:k]])
        # Each token is judged at the time the next one proves it existed; the newest at the present.
        later = next((t for _, _, t, _ in parsed[k + 1:] if t is not None), None)
        at = later or now
        report.items.append(_check_token(name, token, expected, roots, at, k == 0, report))
        report.timestamps[-1]["judged_at"] = at.isoformat()


def _check_token(name: str, token: cms.ContentInfo, expected: bytes, roots: list[asn1_x509.Certificate],
                 at: datetime, first: bool, report: Report) -> Item:
    signed = token["content"]
    info = signed["encap_content_info"]["content"].parsed
    gen_time: datetime = info["gen_time"].native
    certs = [c.chosen for c in signed["certificates"] or []]
    tsa_cert = next((c for c in certs if isinstance(c, asn1_x509.Certificate) and c.ca is False), None) or \
        (certs[0] if certs else None)
    report.timestamps.append({"token": name, "time": gen_time.isoformat(),
                              "digest": info["message_imprint"]["hash_algorithm"]["algorithm"].native,
                              "tsa": tsa_cert.subject.human_friendly if tsa_cert else None,
                              "tsa_not_after": tsa_cert.not_valid_after.isoformat() if tsa_cert else None})
    what = "the tag manifest" if first else "the tag manifest and the earlier timestamps"
    try:
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail", moment=at)
        status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(signed, context, lambda _: expected)))
    except Exception as exc:  # noqa: BLE001 - a token that cannot be checked fails, and says why
        return Item(name, FAILED, f"the timestamp cannot be checked: {type(exc).__name__}: {exc}"[:400])
    when = gen_time.astimezone(UTC).isoformat()
    if not status.intact:
        return Item(name, FAILED, f"the timestamp of {when} does not cover {what}: a file of the package was "
                                  "changed after sealing, or the token belongs to another package")
    if not status.valid:
        return Item(name, FAILED, f"the timestamp's signature is invalid (forged or damaged token) ({when})")
    if not status.trusted:
        problem = status.trust_problem_indic.name if status.trust_problem_indic else "untrusted"
        return Item(name, FAILED, f"the TSA certificate {report.timestamps[-1]['tsa']} is not trusted at "
                                  f"{at.date().isoformat()} ({problem}): forged by an unknown TSA, or its "
                                  "certificate expired before the next archive timestamp was added")
    return Item(name, PASSED, f"timestamp of {when} by {report.timestamps[-1]['tsa']} covers {what}")


def _signed_pdfs(folder: Path) -> list[tuple[str, bytes]]:
    index_path = folder / "data" / "attachments.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else []
    except (ValueError, OSError):
        return []
    out = []
    for entry in index if isinstance(index, list) else []:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not entry.get("signed"):
            continue
        file = folder / "data" / rel
        if file.is_file() and file.resolve().is_relative_to(folder.resolve()):
            out.append((f"data/{rel}", file.read_bytes()))
    return out
