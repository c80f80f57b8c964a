"""`gateway archive verify` as a Python function: a package checked with only the trusted roots at hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from asn1crypto import x509 as asn1_x509

from gateway.config import load_settings
from gateway.signature.trust_store import TrustStore, TrustStoreError

from .archive_verify import FAILED, Item, Report, verify_package
from .progress import Track, untracked


def roots_from(folder: Path) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(r.der) for r in TrustStore.load(folder).roots]


def verify_path(path: Path, trust_dir: Path | None = None, at: datetime | None = None, *,
                track: Track = untracked) -> Report:
    """Verify the package at `path` against the roots in `trust_dir` (default: the configured archive roots),
    as of `at` (default: now; a later date shows what the package will say once certificates have ended)."""
    from gateway.bootstrap import archive_roots
    from gateway.signature.ltv import check_ltv

    try:
        roots = roots_from(trust_dir) if trust_dir is not None else archive_roots(load_settings())
    except (TrustStoreError, OSError, ValueError) as exc:
        return Report(str(path), items=[Item("trust roots", FAILED, f"cannot read the trusted roots: {exc}")])
    return verify_package(path, roots, now=at, pdf_check=check_ltv, track=track)
