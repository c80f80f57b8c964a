"""RFC 4998 evidence records: the hash tree of a batch, each package's reduced tree, renewal, and every way a proof
can be forged, checked with real RFC 3161 tokens (a test PKI's TSA) and read back by another implementation of the
RFC's ASN.1 module (pyasn1-alt-modules, Russ Housley's), as an auditor's own tools would read the file."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1_alt_modules import rfc4998

from gateway.domain.evidence import HashTree, digest, node, root_from
from gateway.signature import evidence_record as er
from gateway.signature.timestamp_token import TokenJudge
from mocks.pki import TestPki

PKI = TestPki()
ROOTS = [asn1_x509.Certificate.load(PKI.public_root.der), asn1_x509.Certificate.load(PKI.gov_root.der)]
NOW = datetime.now(UTC)


def stamp(imprint: bytes, algorithm: str = "sha256", pki: TestPki = PKI) -> bytes:
    return asyncio.run(pki.timestamper().async_timestamp(imprint, algorithm)).dump()


_batches = iter(range(1, 10**6))


def manifests(n: int) -> list[bytes]:
    """Tag manifests of n packages, new ones each call (what the tree's leaves are the hashes of)."""
    b = next(_batches)
    return [f"0c1f... bag-info.txt\n{k:04x}... manifest-sha256.txt\nbatch {b} package {k}\n".encode()
            for k in range(n)]


def batch(n: int, algorithm: str = "sha256") -> tuple[list[bytes], list[bytes]]:
    """n packages sealed under one token: their tag manifests and their evidence records."""
    data = manifests(n)
    tree = HashTree.build([digest(algorithm, d) for d in data], algorithm)
    token = stamp(tree.root, algorithm)
    return data, [er.new_record(algorithm, token, tree.reduced[k]) for k in range(n)]


def problems(record: bytes, data: bytes, at: datetime = NOW) -> list[str | None]:
    return [v.problem for v in er.check(record, data, TokenJudge(ROOTS), at)]


# The tree ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 50])
def test_every_leaf_reaches_the_root_and_only_its_own_proof_holds_it(n: int) -> None:
    leaves = [digest("sha256", d) for d in manifests(n)]
    tree = HashTree.build(leaves, "sha256")
    for k, leaf in enumerate(leaves):
        assert root_from(leaf, tree.reduced[k], "sha256") == tree.root
        assert len(tree.reduced[k]) <= (n - 1).bit_length()  # a binary tree: a list a level
        if n > 1:  # another leaf's proof does not take this leaf (not in its first list), unless they are siblings
            other = tree.reduced[(k + 2) % n] if n > 2 else tree.reduced[k]
            assert root_from(leaf, other, "sha256") in (None, tree.root)
    if n == 1:
        assert tree.root == leaves[0] and tree.reduced == [[]]  # degenerate: the token stamps the hash itself


def test_the_rfcs_own_example_reduces_as_figure_2_says() -> None:
    """RFC 4998 4.2 Figure 2: d1 with data group d2 (a, b, c) and d3; the reduced tree of d1 is
    pht1 = SEQ(h2abc, h1), pht2 = SEQ(h3): its father h12 is not stored, it joins the next list."""
    h = {name: digest("sha256", name.encode()) for name in ("d1", "d2a", "d2b", "d2c", "d3")}
    h2abc = node([h["d2a"], h["d2b"], h["d2c"]], "sha256")
    root = node([node([h["d1"], h2abc], "sha256"), h["d3"]], "sha256")
    assert root_from(h["d1"], [[h2abc, h["d1"]], [h["d3"]]], "sha256") == root
    # The order inside a list is the binary ascending order, whatever order the lists were written in.
    assert node([h["d1"], h2abc], "sha256") == digest("sha256", min(h["d1"], h2abc) + max(h["d1"], h2abc))
    assert root_from(h["d3"], [[h2abc, h["d1"]], [h["d3"]]], "sha256") is None  # not in the first list


# The record, checked ----------------------------------------------------------------------------------------


def test_each_package_of_a_batch_verifies_alone_with_the_shared_token() -> None:
    data, records = batch(5)
    judge = TokenJudge(ROOTS)
    levels = []
    for d, record in zip(data, records, strict=True):
        [verdict] = er.check(record, d, judge, NOW)
        assert verdict.problem is None, verdict
        assert verdict.kind == "initial" and verdict.algorithm == "sha256"
        levels.append(verdict.levels)
    assert levels == [3, 3, 3, 3, 1]  # the fifth is carried up alone twice, then meets the other four's father
    # One token: its signature and path were validated once for the five packages.
    assert len(judge._seen) == 1


def test_a_batch_of_one_has_no_tree_and_its_token_stamps_the_tag_manifests_hash() -> None:
    data, [record] = batch(1)
    [verdict] = er.check(record, data[0], TokenJudge(ROOTS), NOW)
    assert verdict.problem is None and verdict.levels == 0
    parsed = er.load(record)["archive_time_stamp_sequence"][0][0]
    assert parsed["reduced_hashtree"].native is None
    assert verdict.info.imprint == hashlib.sha256(data[0]).digest()


def _with_tree(record: bytes, change) -> bytes:  # noqa: ANN001
    """The record with its first archive timestamp's reduced tree replaced by change(tree)."""
    parsed = er.load(record)
    ats = parsed["archive_time_stamp_sequence"][0][0]
    tree = [[bytes(v.native) for v in level] for level in ats["reduced_hashtree"]]
    return er.new_record("sha256", ats["time_stamp"].dump(), change(tree))


def _with_token(record: bytes, donor: bytes) -> bytes:
    """The record's own reduced tree under the token of `donor` (another batch's record)."""
    token = er.load(donor)["archive_time_stamp_sequence"][0][0]["time_stamp"].dump()
    tree = er.load(record)["archive_time_stamp_sequence"][0][0]["reduced_hashtree"]
    return er.new_record("sha256", token, [[bytes(v.native) for v in level] for level in tree])


def test_a_forged_reduced_tree_fails_with_its_reason() -> None:
    data, records = batch(6)
    other_data, other_records = batch(6)

    def sibling_changed(tree: list[list[bytes]]) -> list[list[bytes]]:
        tree[1][0] = bytes([tree[1][0][0] ^ 1]) + tree[1][0][1:]
        return tree

    cases = {
        "a sibling hash changed": (_with_tree(records[0], sibling_changed), data[0], er.ROOT),
        # The package's own tree swapped for another package's proof in another batch: its hash is not in it.
        "moved into another batch's proof": (other_records[2], data[0], er.NOT_IN_TREE),
        # Its own proof, but the token of another batch: the tree leads to a root that token does not stamp.
        "the token of another batch": (_with_token(records[0], other_records[0]), data[0], er.ROOT),
        "the package changed": (records[0], data[0] + b"x", er.NOT_IN_TREE),
        "a level dropped": (_with_tree(records[0], lambda t: t[:-1]), data[0], er.ROOT),
        "not a record": (b"\x30\x03\x02\x01\x01", data[0], er.UNREADABLE),
    }
    for what, (record, d, problem) in cases.items():
        assert problems(record, d) == [problem], what
    assert problems(other_records[2], other_data[2]) == [None]


def test_a_token_by_an_untrusted_tsa_fails_on_trust_not_on_the_tree() -> None:
    data = manifests(3)
    tree = HashTree.build([digest("sha256", d) for d in data], "sha256")
    forged = er.new_record("sha256", stamp(tree.root, pki=TestPki()), tree.reduced[1])
    assert problems(forged, data[1]) == ["trust"]


# Renewal ----------------------------------------------------------------------------------------------------


def test_a_timestamp_renewal_covers_the_packages_own_token_and_holds_after_the_first_tsa_ends() -> None:
    data, records = batch(3)
    r = er.renewal(records[1], data[1], "sha256")
    assert not r.new_chain
    first = er.load(records[1])["archive_time_stamp_sequence"][0][0]["time_stamp"].dump()
    assert r.imprint == hashlib.sha256(first).digest()
    renewed = er.renewed(records[1], r, stamp(r.imprint))
    verdicts = er.check(renewed, data[1], TokenJudge(ROOTS), NOW)
    assert [(v.chain, v.kind, v.problem) for v in verdicts] == [(1, "initial", None), (1, "timestamp renewal", None)]
    assert verdicts[0].judged_at == verdicts[1].info.gen_time  # the first judged when the renewal proves it existed
    # The renewal of one package is no renewal of another package's record.
    assert problems(renewed, data[2]) == [er.NOT_IN_TREE, None]


def test_a_hash_tree_renewal_starts_a_chain_with_the_new_algorithm() -> None:
    data, records = batch(4)
    r = er.renewal(records[3], data[3], "sha512")
    assert r.new_chain and r.algorithm == "sha512"
    renewed = er.renewed(records[3], r, stamp(r.imprint, "sha512"))
    verdicts = er.check(renewed, data[3], TokenJudge(ROOTS), NOW)
    assert [(v.chain, v.kind, v.algorithm, v.problem) for v in verdicts] == [
        (1, "initial", "sha256", None), (2, "hash-tree renewal", "sha512", None)]
    assert [a["algorithm"].native for a in er.load(renewed)["digest_algorithms"]] == ["sha256", "sha512"]
    # The new chain binds the package's data: another package's data does not reach its imprint.
    assert problems(renewed, data[0])[1] == er.ROOT
    # A renewal token over something else (here: the package's hash alone) is caught.
    wrong = er.renewed(records[3], r, stamp(hashlib.sha512(data[3]).digest(), "sha512"))
    assert problems(wrong, data[3]) == [None, er.ROOT]


def test_a_renewal_that_changes_the_algorithm_inside_a_chain_fails() -> None:
    data, records = batch(2)
    odd = er.renewed(records[0], er.Renewal("sha512", b"", False),
                     stamp(hashlib.sha512(er.load(records[0])["archive_time_stamp_sequence"][0][0]["time_stamp"]
                                          .dump()).digest(), "sha512"))
    assert problems(odd, data[0]) == [None, er.ALGORITHM]


# Another implementation reads the same bytes ------------------------------------------------------------------


def test_pyasn1_alt_modules_reads_the_record_as_rfc_4998_defines_it() -> None:
    data, records = batch(3)
    r = er.renewal(records[0], data[0], "sha512")
    record = er.renewed(records[0], r, stamp(r.imprint, "sha512"))
    decoded, rest = der_decoder.decode(record, asn1Spec=rfc4998.EvidenceRecord())
    assert rest == b"" and der_encoder.encode(decoded) == record  # the same DER, bit for bit
    assert int(decoded["version"]) == 1
    chains = decoded["archiveTimeStampSequence"]
    assert len(chains) == 2 and len(chains[0]) == 1 and len(chains[1]) == 1
    first = chains[0][0]
    tree = [[bytes(v) for v in level] for level in first["reducedHashtree"]]
    assert root_from(hashlib.sha256(data[0]).digest(), tree, "sha256") == \
        er.load(record)["archive_time_stamp_sequence"][0][0]["time_stamp"]["content"]["encap_content_info"][
            "content"].parsed["message_imprint"]["hashed_message"].native
    assert str(first["digestAlgorithm"]["algorithm"]) == "2.16.840.1.101.3.4.2.1"  # sha256
    assert not chains[1][0]["reducedHashtree"].isValue  # one package's renewal: no tree
    token = cms.ContentInfo.load(der_encoder.encode(first["timeStamp"]))
    assert token["content_type"].native == "signed_data"


def test_a_record_verified_after_the_first_tsa_certificate_ended_needs_the_renewal() -> None:
    ends = NOW + timedelta(days=10)
    short = PKI.tsa_ending(ends)
    from pyhanko.sign.timestamps import DummyTimeStamper

    signer = short.signer()
    stamper = DummyTimeStamper(tsa_cert=signer.signing_cert, tsa_key=signer.signing_key,
                               certs_to_embed=signer.cert_registry)
    data = manifests(2)
    tree = HashTree.build([digest("sha256", d) for d in data], "sha256")
    record = er.new_record("sha256", asyncio.run(stamper.async_timestamp(tree.root, "sha256")).dump(),
                           tree.reduced[0])
    later = ends + timedelta(days=1)
    assert problems(record, data[0], later) == ["trust"]
    r = er.renewal(record, data[0], "sha256")
    renewed = er.renewed(record, r, stamp(r.imprint))
    assert problems(renewed, data[0], later) == [None, None]
