"""The roots a signature may chain to: files in a folder, never the operating system's store, never fetched.

Vietnam has two separate PKIs, kept as two sub-folders: `public/` (the Vietnam National Root CA, under which
VNPT-CA, Viettel-CA, FPT-CA, BKAV-CA... issue) and `government/` (the Government Cipher Committee's Root CA
chuyên dùng Chính phủ, for officials' signatures). Each root is known by its SHA-256 fingerprint; when
fingerprints are pinned in the settings, a file that matches none of them stops the gateway from starting.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)

GROUPS = ("public", "government")
SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})


class TrustStoreError(Exception):
    """The trust folder cannot be used as configured: refuse to start rather than trust the wrong roots."""


@dataclass(frozen=True)
class TrustRoot:
    group: str
    file: str
    subject: str
    sha256: str
    not_after: str
    der: bytes

    def describe(self) -> dict[str, str]:
        return {"group": self.group, "file": self.file, "subject": self.subject, "sha256": self.sha256,
                "not_after": self.not_after}


def _certificates(path: Path) -> list[x509.Certificate]:
    raw = path.read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificates(raw)
        return [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise TrustStoreError(f"{path}: not a PEM or DER certificate ({exc})") from None


def _refuse_misplaced(folder: Path) -> None:
    """A root anywhere but in a group's folder would be silently ignored, and every signature it should
    anchor would turn INDETERMINATE: say where it belongs instead."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES and path.parent.name not in GROUPS:
            raise TrustStoreError(
                f"{path}: a trust root must be in {folder / 'public'} (the Vietnam National Root CA, for the "
                f"public CAs under it) or {folder / 'government'} (Root CA chuyên dùng Chính phủ, for "
                "officials' signatures); move it into the one it belongs to")


@dataclass(frozen=True)
class TrustStore:
    roots: tuple[TrustRoot, ...]

    @classmethod
    def load(cls, folder: Path, pinned: list[str] | None = None) -> TrustStore:
        """Read `folder/public` and `folder/government`; with `pinned`, every root must be one of them."""
        wanted = {p.lower().replace(":", "") for p in pinned or []}
        _refuse_misplaced(folder)
        roots: list[TrustRoot] = []
        for group in GROUPS:
            sub = folder / group
            files = sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES) if sub.is_dir() else []
            for path in files:
                for cert in _certificates(path):
                    der = cert.public_bytes(serialization.Encoding.DER)
                    sha = hashlib.sha256(der).hexdigest()
                    if wanted and sha not in wanted:
                        raise TrustStoreError(f"{path}: fingerprint {sha} is not among signature.trust_fingerprints")
                    roots.append(TrustRoot(group, f"{group}/{path.name}", cert.subject.rfc4514_string(), sha,
                                           cert.not_valid_after_utc.isoformat(), der))
        if missing := wanted - {r.sha256 for r in roots}:
            raise TrustStoreError(f"pinned root(s) not found in {folder}: {', '.join(sorted(missing))}")
        return cls(tuple(roots))

    def group_of(self, sha256: str) -> str | None:
        return next((r.group for r in self.roots if r.sha256 == sha256), None)

    def log_fingerprints(self) -> None:
        if not self.roots:
            log.warning("no trust roots configured: no signature can be trusted")
        for root in self.roots:
            log.info("trust root %s %s sha256=%s", root.group, root.subject, root.sha256)
