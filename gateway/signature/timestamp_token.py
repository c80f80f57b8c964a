"""RFC 3161 timestamp tokens read and checked offline with pyHanko: what a token says (time, imprint algorithm,
TSA, how long its certificates last) and whether it is intact, validly signed and trusted at a given moment.

Used for the archive packages' timestamp chains and for the audit chain's anchors. No network: the TSA's
certificates must be in the token and chain to one of the roots given.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko.sign.validation.utils import CMSAlgorithmUsagePolicy
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import AcceptAllAlgorithms

# Why a token does not hold: its imprint is not what it should stamp, its signature is broken, its TSA untrusted
# at the moment asked (unknown TSA, or a certificate ended), or it cannot be checked at all.
IMPRINT, SIGNATURE, TRUST, ERROR = "imprint", "signature", "trust", "error"


@dataclass(frozen=True)
class TokenInfo:
    gen_time: datetime
    digest: str  # the message imprint's hash algorithm (sha256, ...)
    imprint: bytes  # what it stamps: the hash of the data, by that algorithm
    tsa: str | None  # the TSA certificate's subject
    tsa_not_after: datetime | None
    valid_until: datetime | None  # the earliest end among the certificates it carries: renew before this


@dataclass(frozen=True)
class TokenCheck:
    problem: str | None  # None: intact, valid and trusted; else IMPRINT, SIGNATURE, TRUST or ERROR
    detail: str = ""


def read_token(der: bytes) -> tuple[cms.ContentInfo, TokenInfo]:
    """The token and what it says; ValueError when the bytes are no RFC 3161 token."""
    try:
        token = cms.ContentInfo.load(der)
        signed = token["content"]
        info: tsp.TSTInfo = signed["encap_content_info"]["content"].parsed
        gen_time: datetime = info["gen_time"].native
        digest = str(info["message_imprint"]["hash_algorithm"]["algorithm"].native)
        imprint = bytes(info["message_imprint"]["hashed_message"].native)
        certs = [c.chosen for c in signed["certificates"] or [] if isinstance(c.chosen, asn1_x509.Certificate)]
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same: not a token
        raise ValueError(f"not an RFC 3161 token: {type(exc).__name__}") from None
    tsa_cert = next((c for c in certs if c.ca is False), None) or (certs[0] if certs else None)
    ends = [c.not_valid_after for c in certs]
    return token, TokenInfo(gen_time=gen_time, digest=digest.lower(), imprint=imprint,
                            tsa=tsa_cert.subject.human_friendly if tsa_cert else None,
                            tsa_not_after=tsa_cert.not_valid_after if tsa_cert else None,
                            valid_until=min(ends) if ends else None)


# A token that a later, stronger one covers is judged by what was accepted when it was made: the later token is
# what vouches for the data now, so an older token's since-weakened digest does not fail it (RFC 4998 5.3).
_ANY_ALGORITHM = CMSAlgorithmUsagePolicy.lift_policy(AcceptAllAlgorithms())


def check_token(token: cms.ContentInfo, expected: Callable[[str], bytes], roots: list[asn1_x509.Certificate],
                at: datetime, *, covered: bool = False) -> TokenCheck:
    """Is `token` over expected(its hash algorithm), validly signed, by a TSA trusted at `at`? Offline.
    `covered`: a later token stamps this one, so weak algorithms are accepted."""
    try:
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail", moment=at)
        status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(
            token["content"], context, expected, algorithm_policy=_ANY_ALGORITHM if covered else None)))
    except Exception as exc:  # noqa: BLE001 - a token that cannot be checked fails, and says why
        return TokenCheck(ERROR, f"{type(exc).__name__}: {exc}"[:400])
    if not status.intact:
        return TokenCheck(IMPRINT)
    if not status.valid:
        return TokenCheck(SIGNATURE)
    if not status.trusted:
        return TokenCheck(TRUST, status.trust_problem_indic.name if status.trust_problem_indic else "untrusted")
    return TokenCheck(None)


class TokenJudge:
    """Whether tokens are validly signed by a TSA trusted at a moment, each answered once: the packages of a batch
    share one token, so its path validation (the costly part, ~5 ms) runs once for the batch. The imprint is the
    caller's to compare (a reduced hash tree's root, or a chain's hash): here each token is taken as stamping what
    it says it stamps."""

    def __init__(self, roots: list[asn1_x509.Certificate]) -> None:
        self.roots = roots
        self._seen: dict[tuple[bytes, datetime, bool], TokenCheck] = {}
        self._read: dict[bytes, tuple[cms.ContentInfo, TokenInfo]] = {}

    def read(self, der: bytes) -> tuple[cms.ContentInfo, TokenInfo]:
        """read_token, once per token (ValueError for bytes that are none)."""
        key = hashlib.sha256(der).digest()
        if key not in self._read:
            self._read[key] = read_token(der)
        return self._read[key]

    def judge(self, token: cms.ContentInfo, der: bytes, at: datetime, *, covered: bool = False) -> TokenCheck:
        key = (hashlib.sha256(der).digest(), at, covered)
        if key not in self._seen:
            own = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]["hashed_message"].native
            self._seen[key] = check_token(token, lambda _algorithm: own, self.roots, at, covered=covered)
        return self._seen[key]
