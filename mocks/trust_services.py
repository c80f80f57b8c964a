"""The identities the TSA and OCSP mocks sign with: set by testers over `_mock/`, or made on first use.

Testers who built their own PKI (mocks/pki.py) hand the mock its TSA certificate and key, or a CA's, as PEM
texts; `make run` gets a fresh throwaway PKI instead, whose certificates `GET <mock>/_mock/identity` shows.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from certomancer import crypto_utils
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


@functools.lru_cache(maxsize=32)
def _loaded_key(der: bytes):  # noqa: ANN202 - a cryptography private key
    return serialization.load_der_private_key(der, password=None)


class _KeyLoadedOnce(crypto_utils.PycaCryptographyBackend):
    """certomancer loads (and so validates) the private key again for every signature it makes: for the
    test PKI's RSA-2048 keys that is ~170 ms against ~6 ms for the signature itself, so the TSA mock spent
    94 % of its CPU there (one token per archive package). Here an RSA PKCS#1 v1.5 signature, what the
    test PKI makes, reuses the key loaded the first time; anything else goes through certomancer as is."""

    def generic_sign(self, private_key: asn1_keys.PrivateKeyInfo, tbs_bytes: bytes,
                     sd_algo: asn1_algos.SignedDigestAlgorithm) -> bytes:
        if sd_algo.signature_algo != "rsassa_pkcs1v15":
            return super().generic_sign(private_key, tbs_bytes, sd_algo)
        digest = getattr(hashes, sd_algo.hash_algo.upper())()
        return _loaded_key(private_key.dump()).sign(tbs_bytes, padding.PKCS1v15(), digest)


crypto_utils.CRYPTO_BACKEND = _KeyLoadedOnce()  # certomancer's signing services read it at each signature

_default_lock = threading.Lock()
_default_pki = None


def default_pki():  # noqa: ANN201 - mocks.pki.TestPki, imported late: making one costs a second of key generation
    global _default_pki
    with _default_lock:
        if _default_pki is None:
            from mocks.pki import TestPki

            _default_pki = TestPki()
        return _default_pki


def write_default_roots(folder: Path) -> list[Path]:
    """The roots of the throwaway PKI, as a trust folder the gateway reads (public/, government/), so that what
    the TSA mock stamps under `make run` verifies. Each run makes a new PKI: its roots are added under their
    fingerprints, and the earlier runs' stay, so packages sealed then still verify."""
    pki = default_pki()
    written = []
    for group, identity in (("public", pki.public_root), ("government", pki.gov_root)):
        (folder / group).mkdir(parents=True, exist_ok=True)
        path = folder / group / f"mock-root-{hashlib.sha256(identity.der).hexdigest()[:16]}.pem"
        path.write_bytes(identity.pem)
        written.append(path)
    return written


def _der(text: str) -> bytes:
    data = text.encode()
    if pem.detect(data):
        return pem.unarmor(data)[2]
    raise ValueError("expected a PEM text")


@dataclass(frozen=True)
class SigningIdentity:
    cert: asn1_x509.Certificate
    key: asn1_keys.PrivateKeyInfo
    chain: tuple[asn1_x509.Certificate, ...] = ()

    @classmethod
    def from_json(cls, body: object) -> SigningIdentity:
        """{"cert": PEM, "key": PEM (PKCS#8), "chain": [PEM, ...]}; ValueError when it is not that."""
        if not isinstance(body, dict) or not isinstance(body.get("cert"), str) or not isinstance(body.get("key"), str):
            raise ValueError('send {"cert": PEM, "key": PEM, "chain": [PEM, ...]}')
        chain = body.get("chain") or []
        if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
            raise ValueError("chain must be a list of PEM texts")
        try:
            return cls(asn1_x509.Certificate.load(_der(body["cert"])), asn1_keys.PrivateKeyInfo.load(_der(body["key"])),
                       tuple(asn1_x509.Certificate.load(_der(c)) for c in chain))
        except Exception as exc:  # noqa: BLE001 - a bad PEM or DER: the tester's mistake, said back
            raise ValueError(f"cannot read the identity: {exc}") from None

    @classmethod
    def of(cls, identity) -> SigningIdentity:  # noqa: ANN001 - a mocks.pki.Identity
        return cls.from_json(identity.as_json())

    def as_json(self) -> dict[str, object]:
        """What a tester may see: the certificates, never the key."""
        return {"cert": pem.armor("CERTIFICATE", self.cert.dump()).decode(),
                "subject": self.cert.subject.human_friendly,
                "chain": [pem.armor("CERTIFICATE", c.dump()).decode() for c in self.chain]}
