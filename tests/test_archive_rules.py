"""The archive's pure rules: when a timestamp is due for renewal, whether a new token helps, and what the audit
chain's anchors say about a chain cut at its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.domain.archive import chain_imprint, renewal_due, renewal_helps
from gateway.domain.audit_chain import anchor_problems

NOW = datetime(2030, 1, 1, tzinfo=UTC)
WEAK = ["md5", "sha1"]


def due(ends: datetime | None, digest: str = "sha256") -> str | None:
    return renewal_due(tsa_not_after=ends, digest=digest, now=NOW, renew_before=timedelta(days=180), weak_digests=WEAK)


def test_renewal_is_due_inside_the_margin_or_for_a_weak_digest() -> None:
    assert due(NOW + timedelta(days=181)) is None
    assert "ends on 2030-06-30" in due(NOW + timedelta(days=180))
    assert "SHA1" in due(NOW + timedelta(days=3000), "SHA1").upper()


def test_a_new_token_helps_only_if_it_outlasts_the_old_one_or_fixes_the_digest() -> None:
    def helps(old_end, old_digest, new_end, new_digest):  # noqa: ANN001, ANN202
        return renewal_helps(old_not_after=old_end, old_digest=old_digest, new_not_after=new_end,
                             new_digest=new_digest, weak_digests=WEAK)

    later = NOW + timedelta(days=900)
    assert helps(NOW, "sha256", later, "sha256")
    assert not helps(NOW, "sha256", NOW, "sha256")  # the same TSA certificate: only another version
    assert helps(later, "sha1", NOW, "sha256")  # a strong digest helps even with a sooner end
    assert not helps(NOW, "sha256", later, "sha1")


def test_each_token_of_the_chain_stamps_the_tag_manifest_and_the_earlier_tokens() -> None:
    assert chain_imprint(b"m", []) != chain_imprint(b"m", [b"t1"]) != chain_imprint(b"m", [b"t1", b"t2"])
    assert len(chain_imprint(b"m", [b"t1"], "sha512")) == 64


def _anchor(id_: int, seq: int, hash_: str) -> dict:
    return {"id": id_, "seq": seq, "hash": hash_, "timestamp_at": NOW}


def test_anchors_name_a_cut_at_the_end_and_a_chain_sealed_again() -> None:
    anchors = [_anchor(1, 5, "a" * 64), _anchor(2, 9, "b" * 64)]
    assert anchor_problems(anchors, {5: "a" * 64, 9: "b" * 64}, head_seq=12) == []
    cut = anchor_problems(anchors, {5: "a" * 64}, head_seq=7)
    assert [(p.seq, p.kind) for p in cut] == [(9, "truncated")]
    assert "anchor #2" in cut[0].message and "ends at seq 7" in cut[0].message
    resealed = anchor_problems(anchors, {5: "a" * 64, 9: "c" * 64}, head_seq=12)
    assert [(p.seq, p.kind) for p in resealed] == [(9, "anchor_mismatch")]
    emptied = anchor_problems(anchors, {}, head_seq=0)
    assert [p.kind for p in emptied] == ["truncated"] and "1 older anchor" in emptied[0].message
