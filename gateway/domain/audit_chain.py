"""The audit log as a hash chain (X-Road's message log does the same): each sealed record holds the hash of
the one before it and a keyed hash (HMAC-SHA256) over its own content and that link. Anyone who edits,
deletes or reorders records without the key breaks the chain at a place this module can name.

A record's position is not part of what it hashes; the link to the previous hash is. So a record moved
elsewhere still carries a valid hash of its own but no longer follows its neighbour ("out of order"),
an edited one fails its own hash ("edited"), and a removed one leaves a gap in the numbering ("missing")
or, if the numbers were closed up, a link to nothing ("out of order").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

GENESIS = "0" * 64  # what the first record links to


def content(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a record: what it says, not where it sits."""
    return json.dumps({"id": record["id"], "at": record["at"].astimezone(UTC).isoformat(), "actor": record["actor"],
                       "action": record["action"], "subject": record["subject"], "detail": record["detail"]},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def link(key: bytes, prev_hash: str, record: Mapping[str, Any]) -> str:
    return hmac.new(key, prev_hash.encode() + b"\n" + content(record), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Problem:
    seq: int
    id: int | None
    kind: str  # edited, missing, out_of_order
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "kind": self.kind, "message": self.message}


@dataclass
class ChainCheck:
    """Walk sealed records in `seq` order; each step says what is wrong at that place, if anything."""

    key: bytes
    expected_seq: int = 1
    prev_hash: str = GENESIS
    checked: int = 0

    def feed(self, record: Mapping[str, Any]) -> list[Problem]:
        problems: list[Problem] = []
        seq, rid = record["seq"], record["id"]
        gap = seq != self.expected_seq
        if gap:
            first, last = self.expected_seq, seq - 1
            span = f"seq {first}" if first == last else f"seq {first} to {last}"
            problems.append(Problem(first, None, "missing", f"{span} missing: deleted from the log"))
        if not hmac.compare_digest(link(self.key, record["prev_hash"], record), record["hash"]):
            problems.append(Problem(seq, rid, "edited", f"seq {seq} (id {rid}, {record['action']}) was changed "
                                                        "after it was sealed"))
        elif not gap and record["prev_hash"] != self.prev_hash:
            problems.append(Problem(seq, rid, "out_of_order", f"seq {seq} (id {rid}) does not follow the record "
                                                              "before it: records were reordered or one removed"))
        self.expected_seq, self.prev_hash = seq + 1, record["hash"]
        self.checked += 1
        return problems


def check(key: bytes, records: Iterable[Mapping[str, Any]]) -> list[Problem]:
    walk = ChainCheck(key)
    return [p for r in records for p in walk.feed(r)]


def _anchor_name(anchor: Mapping[str, Any]) -> str:
    return (f"the TSA anchor #{anchor['id']} of {anchor['timestamp_at'].astimezone(UTC).isoformat()} "
            f"(seq {anchor['seq']}, hash {anchor['hash'][:16]}…)")


def anchor_problems(anchors: list[Mapping[str, Any]], found: Mapping[int, str], head_seq: int) -> list[Problem]:
    """What the anchors (seq, hash stamped by the TSA) say about the chain as it is now: `found` holds the hash
    of each anchored position still in the chain, `head_seq` its last position (0: empty). Records removed from
    the end leave no gap the walk could see, but an anchor beyond the end ("truncated"); removed and sealed
    again, or rewritten, and the anchored position holds another hash ("anchor_mismatch")."""
    problems = []
    beyond = [a for a in anchors if a["seq"] > head_seq]
    if beyond:
        newest = max(beyond, key=lambda a: a["seq"])
        more = f"; {len(beyond) - 1} older anchor(s) also point past the end" if len(beyond) > 1 else ""
        problems.append(Problem(newest["seq"], None, "truncated", (
            f"records were removed from the end of the chain: {_anchor_name(newest)} names seq {newest['seq']}, "
            f"the chain now ends at seq {head_seq}, so at least seq {head_seq + 1} to {newest['seq']} are "
            f"gone{more}")))
    for anchor in anchors:
        seq = anchor["seq"]
        if seq <= head_seq and found.get(seq) != anchor["hash"]:
            now_there = found.get(seq)
            problems.append(Problem(seq, None, "anchor_mismatch", (
                f"{_anchor_name(anchor)} does not match the chain: seq {seq} now "
                f"{'has hash ' + now_there[:16] + '…' if now_there else 'is missing'}; records at or before it were "
                "removed and the chain sealed again, or rewritten")))
    return problems
