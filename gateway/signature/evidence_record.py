"""RFC 4998 evidence records in their standard DER form (the ASN.1 module of RFC 4998 appendix A, IMPLICIT TAGS),
written and checked offline: the archive timestamps of a package, each with its reduced hash tree, in chains.

An auditor's own tools read the file as they read any RFC 4998 record (tests/test_evidence_record.py decodes it
with pyasn1-alt-modules' rfc4998 module, written from the RFC by another hand). The hash-tree arithmetic is in
gateway/domain/evidence.py; the tokens are RFC 3161 tokens checked by timestamp_token.py.

    EvidenceRecord ::= SEQUENCE { version INTEGER { v1(1) }, digestAlgorithms SEQUENCE OF AlgorithmIdentifier,
        cryptoInfos [0] CryptoInfos OPTIONAL, encryptionInfo [1] EncryptionInfo OPTIONAL,
        archiveTimeStampSequence ArchiveTimeStampSequence }
    ArchiveTimeStampSequence ::= SEQUENCE OF ArchiveTimeStampChain
    ArchiveTimeStampChain ::= SEQUENCE OF ArchiveTimeStamp
    ArchiveTimeStamp ::= SEQUENCE { digestAlgorithm [0] AlgorithmIdentifier OPTIONAL,
        attributes [1] Attributes OPTIONAL, reducedHashtree [2] SEQUENCE OF PartialHashtree OPTIONAL,
        timeStamp ContentInfo }
    PartialHashtree ::= SEQUENCE OF OCTET STRING
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core

from gateway.domain import evidence
from gateway.signature.timestamp_token import TokenCheck, TokenInfo, TokenJudge, read_token

V1 = 1

# Why an archive timestamp of a record does not hold, besides its token's own problems (timestamp_token.py).
UNREADABLE = "unreadable"  # the record, or one of its tokens, is no RFC 4998 / RFC 3161 structure
NOT_IN_TREE = "not_in_tree"  # the value this timestamp must cover is not in its reduced tree's first list
ROOT = "root"  # the reduced tree leads to a root the token does not stamp
ALGORITHM = "algorithm"  # the token's imprint algorithm is not the tree's, or changes within a chain
UNLISTED = "unlisted"  # a chain's algorithm is missing from the record's digestAlgorithms


class PartialHashtree(core.SequenceOf):
    _child_spec = core.OctetString


class ReducedHashtree(core.SequenceOf):
    _child_spec = PartialHashtree


class ArchiveTimeStamp(core.Sequence):
    _fields = [
        ("digest_algorithm", algos.DigestAlgorithm, {"implicit": 0, "optional": True}),
        ("attributes", cms.CMSAttributes, {"implicit": 1, "optional": True}),
        ("reduced_hashtree", ReducedHashtree, {"implicit": 2, "optional": True}),
        ("time_stamp", cms.ContentInfo),
    ]


class ArchiveTimeStampChain(core.SequenceOf):
    _child_spec = ArchiveTimeStamp


class ArchiveTimeStampSequence(core.SequenceOf):
    _child_spec = ArchiveTimeStampChain


class DigestAlgorithms(core.SequenceOf):
    _child_spec = algos.DigestAlgorithm


class CryptoInfos(core.SequenceOf):
    _child_spec = cms.CMSAttribute


class EncryptionInfo(core.Sequence):
    _fields = [("encryption_info_type", core.ObjectIdentifier), ("encryption_info_value", core.Any)]


class EvidenceRecord(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("digest_algorithms", DigestAlgorithms),
        ("crypto_infos", CryptoInfos, {"implicit": 0, "optional": True}),
        ("encryption_info", EncryptionInfo, {"implicit": 1, "optional": True}),
        ("archive_time_stamp_sequence", ArchiveTimeStampSequence),
    ]


def _der(tag: int, content: bytes) -> bytes:
    """One DER element: its tag, its length (definite, shortest form), its content."""
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | (size := (n.bit_length() + 7) // 8)]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content


SEQUENCE, CONTEXT_0, CONTEXT_2 = 0x30, 0xA0, 0xA2  # universal SEQUENCE; [0] and [2] IMPLICIT, constructed


def _archive_timestamp(algorithm: str, token: bytes, reduced: list[list[bytes]]) -> bytes:
    """An ArchiveTimeStamp's DER, the token's bytes inside as the TSA made them. Encoded here rather than through
    asn1crypto, which re-encodes every certificate of a token put into a new structure (~15 ms a package);
    tests/test_evidence_record.py has pyasn1-alt-modules decode and re-encode it bit for bit."""
    digest_algorithm = algos.DigestAlgorithm({"algorithm": algorithm}).dump()
    fields = _der(CONTEXT_0, digest_algorithm[2:])  # [0] IMPLICIT AlgorithmIdentifier: its content, retagged
    if reduced:  # one data object alone: the token stamps its hash, no tree (the field is OPTIONAL)
        fields += _der(CONTEXT_2, b"".join(_der(SEQUENCE, b"".join(_der(0x04, v) for v in level)) for level in reduced))
    return _der(SEQUENCE, fields + token)


def _record(algorithms: list[str], chains: list[list[bytes]]) -> bytes:
    """An EvidenceRecord's DER from its algorithms and its chains (each a list of ArchiveTimeStamp DERs)."""
    listed = b"".join(algos.DigestAlgorithm({"algorithm": a}).dump() for a in algorithms)
    sequence = b"".join(_der(SEQUENCE, b"".join(chain)) for chain in chains)
    return _der(SEQUENCE, core.Integer(V1).dump() + _der(SEQUENCE, listed) + _der(SEQUENCE, sequence))


def new_record(algorithm: str, token: bytes, reduced: list[list[bytes]]) -> bytes:
    """A package's first evidence record: one chain of one archive timestamp (`token` over the batch's root)."""
    return _record([algorithm], [[_archive_timestamp(algorithm, token, reduced)]])


def load(der: bytes) -> EvidenceRecord:
    """The record; ValueError when the bytes are no DER EvidenceRecord of version 1. Each field this module reads
    is parsed here, so that a broken one fails now, not halfway through a check; the tokens inside are parsed by
    whoever reads them (read_token)."""
    try:
        record = EvidenceRecord.load(der, strict=True)
        version = record["version"].native
        [a["algorithm"].native for a in record["digest_algorithms"]]
        chains = record["archive_time_stamp_sequence"]
        for chain in chains:
            for ats in chain:
                ats["digest_algorithm"].native  # noqa: B018 - parsed now, see above
                ats["reduced_hashtree"].native  # noqa: B018
                ats["time_stamp"]["content_type"].native  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same: not a record
        raise ValueError(f"not an RFC 4998 evidence record: {type(exc).__name__}: {exc}"[:300]) from None
    if version != V1:
        raise ValueError(f"evidence record version {version}, only v1 (RFC 4998) is known")
    if not len(chains) or not all(len(c) for c in chains):
        raise ValueError("the evidence record holds no archive timestamp, or an empty chain")
    return record


def _algorithm(ats: ArchiveTimeStamp, info: TokenInfo) -> str:
    """The hash algorithm of an archive timestamp's tree: its digestAlgorithm, else its token's (RFC 4998 4.1)."""
    field = ats["digest_algorithm"]
    return str(field["algorithm"].native).lower() if field.native is not None else info.digest


def _chains(record: EvidenceRecord) -> list[list[ArchiveTimeStamp]]:
    return [list(chain) for chain in record["archive_time_stamp_sequence"]]


def _earlier_chains(record: EvidenceRecord, count: int) -> bytes:
    """The first `count` chains as one DER ArchiveTimeStampSequence (5.2 step 3: atsc)."""
    chains = record["archive_time_stamp_sequence"]
    return ArchiveTimeStampSequence([chains[n] for n in range(count)]).dump(force=True)


@dataclass(frozen=True)
class Renewal:
    """What a renewal must stamp, with which algorithm, and how the new archive timestamp joins the record."""

    algorithm: str
    imprint: bytes
    new_chain: bool  # Hash-Tree Renewal (a new algorithm): a new chain; else Timestamp Renewal of the last chain


def renewal(der: bytes, data_object: bytes, algorithm: str) -> Renewal:
    """The next archive timestamp of a record (RFC 4998 5.2): with the last chain's algorithm, a Timestamp Renewal
    over its newest token; with another one, a Hash-Tree Renewal over the data object and every chain so far."""
    record = load(der)
    chains = _chains(record)
    last = chains[-1][-1]
    _, info = read_token(last["time_stamp"].dump())
    if _algorithm(last, info) == algorithm:
        return Renewal(algorithm, evidence.timestamp_renewal_input(last["time_stamp"].dump(), algorithm), False)
    written, _ = evidence.hash_tree_renewal_inputs(data_object, _earlier_chains(record, len(chains)), algorithm)
    return Renewal(algorithm, written, True)


def renewed(der: bytes, renewal_: Renewal, token: bytes) -> bytes:
    """The record with the renewal's archive timestamp added (no reduced tree: one package, its own token)."""
    record = load(der)
    chains = [[ats.dump() for ats in chain] for chain in record["archive_time_stamp_sequence"]]
    ats = _archive_timestamp(renewal_.algorithm, token, [])
    if renewal_.new_chain:
        chains.append([ats])
    else:
        chains[-1].append(ats)
    listed = [str(a["algorithm"].native) for a in record["digest_algorithms"]]
    return _record([*listed, *([renewal_.algorithm] if renewal_.algorithm not in listed else [])], chains)


@dataclass(frozen=True)
class Verdict:
    """One archive timestamp of a record as checked: where it is, what its token says, what (if anything) fails."""

    number: int  # 1, 2, ... over every chain, oldest first
    chain: int  # 1, 2, ...
    kind: str  # "initial", "timestamp renewal", "hash-tree renewal"
    algorithm: str
    levels: int  # lists in its reduced hash tree: 0 when the token stamps the package's own hash
    info: TokenInfo | None
    judged_at: datetime | None
    problem: str | None  # None, a problem of this module (UNREADABLE, NOT_IN_TREE, ...) or of the token's check
    detail: str = ""


def check(der: bytes, data_object: bytes, judge: TokenJudge, now: datetime) -> list[Verdict]:
    """Each archive timestamp of the record (RFC 4998 5.3): it covers what it must (the data object through its
    reduced hash tree for the first of the first chain; the previous token for a Timestamp Renewal; the data object
    and the earlier chains for a Hash-Tree Renewal), with its chain's algorithm, and its token is validly signed by a
    TSA trusted at the time the next archive timestamp proves (the newest: `now`). An unreadable record is one
    verdict saying so."""
    try:
        record = load(der)
        chains = _chains(record)
        tokens = [[judge.read(ats["time_stamp"].dump()) for ats in chain] for chain in chains]
    except ValueError as exc:
        return [Verdict(1, 1, "initial", "?", 0, None, None, UNREADABLE, str(exc))]
    listed = {str(a["algorithm"].native).lower() for a in record["digest_algorithms"]}
    flat = [(c, a) for c, chain in enumerate(chains) for a in range(len(chain))]
    times = [tokens[c][a][1].gen_time for c, a in flat]
    verdicts = []
    for n, (c, a) in enumerate(flat):
        ats, (token, info) = chains[c][a], tokens[c][a]
        algorithm = _algorithm(ats, info)
        reduced = [[bytes(v.native) for v in level] for level in ats["reduced_hashtree"]] \
            if ats["reduced_hashtree"].native is not None else []
        kind = "initial" if (c, a) == (0, 0) else "timestamp renewal" if a else "hash-tree renewal"
        at = times[n + 1] if n + 1 < len(flat) else now
        first_algorithm = _algorithm(chains[c][0], tokens[c][0][1])
        problem, detail = _covers(record, chains, c, a, algorithm, first_algorithm, reduced, info, data_object,
                                  listed)
        if problem is None:
            token_check: TokenCheck = judge.judge(token, ats["time_stamp"].dump(), at, covered=n + 1 < len(flat))
            problem, detail = token_check.problem, token_check.detail
        verdicts.append(Verdict(n + 1, c + 1, kind, algorithm, len(reduced), info, at, problem, detail))
    return verdicts


def _covers(record: EvidenceRecord, chains: list[list[ArchiveTimeStamp]], c: int, a: int, algorithm: str,
            first_algorithm: str, reduced: list[list[bytes]], info: TokenInfo, data_object: bytes,
            listed: set[str]) -> tuple[str | None, str]:
    """(problem, detail) of what archive timestamp `a` of chain `c` stamps; (None, "") when it covers what it must."""
    if algorithm != info.digest:
        return ALGORITHM, f"its tree uses {algorithm} but its token's imprint {info.digest} (RFC 4998 4.3 step 4)"
    if a and algorithm != first_algorithm:
        return ALGORITHM, f"it changes its chain's hash algorithm to {algorithm} (a new algorithm starts a new chain)"
    if algorithm not in listed:
        return UNLISTED, f"the record's digestAlgorithms does not list {algorithm}, which chain {c + 1} uses"
    try:
        if a:  # Timestamp Renewal: the previous token, whole
            must = [evidence.timestamp_renewal_input(chains[c][a - 1]["time_stamp"].dump(), algorithm)]
        elif c:  # Hash-Tree Renewal: the data object and the chains before
            must = list(evidence.hash_tree_renewal_inputs(data_object, _earlier_chains(record, c), algorithm))
        else:
            must = [evidence.digest(algorithm, data_object)]
    except ValueError:
        return ALGORITHM, f"{algorithm} is no hash algorithm this verifier knows"
    roots = [r for r in (evidence.root_from(h, reduced, algorithm) for h in must) if r is not None]
    if not roots:
        return NOT_IN_TREE, "the value it must cover is not in the first list of its reduced hash tree"
    if info.imprint not in roots:
        return ROOT, f"its reduced hash tree leads to {roots[0].hex()[:16]}…, its token stamps " \
                     f"{info.imprint.hex()[:16]}…"
    return None, ""
