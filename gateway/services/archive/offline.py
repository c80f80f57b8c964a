"""`gateway archive verify` as a Python function: a package checked with only the trusted roots at hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from asn1crypto import x509 as asn1_x509

from gateway.services.archive.verify import FAILED, Item, Report, verify_package
from gateway.services.progress import Track, untracked
from gateway.signature.trust_store import TrustStore, TrustStoreError


def roots_from(folder: Path) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(r.der) for r in TrustStore.load(folder).roots]


def verify_path(path: Path, trust_dir: Path, at: datetime | None = None, *, track: Track = untracked,
                expect: str | None = None) -> Report:
    """Verify the package at `path` against the roots in `trust_dir` (the CLI's default: the configured stack's,
    Settings.archive_trust_path), as of `at` (default: now; a later date shows what the package will say once
    certificates have ended); `expect` (CODE[.vNNNN]) makes what it holds a check."""
    from gateway.signature.ltv import check_ltv

    try:
        roots = roots_from(trust_dir)
    except (TrustStoreError, OSError, ValueError) as exc:
        return Report(str(path), items=[Item("trust roots", FAILED, f"cannot read the trusted roots: {exc}")],
                      trust=str(trust_dir))
    report = verify_package(path, roots, now=at, pdf_check=check_ltv, track=track, expect=expect)
    report.trust = f"{trust_dir} ({len(roots)} roots)"
    return report
