"""Sealing the audit log into its hash chain, and checking the chain."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from asn1crypto import x509 as asn1_x509
from sqlalchemy import Engine

from gateway.domain.audit_chain import ChainCheck, anchor_problems
from gateway.services.audit import anchors as audit_anchors
from gateway.services.progress import Track, untracked
from gateway.store import archive as packages
from gateway.store import audit

log = logging.getLogger(__name__)

BATCH = 5000
MAX_PROBLEMS = 100  # a wrecked log would otherwise answer with one line per record


def seal_all(engine: Engine, key: bytes) -> int:
    """Seal every record committed so far. The head is logged: a copy outside the database, against which
    a removal of the newest records (which leaves no gap) can be noticed."""
    total, head = 0, None
    while True:
        with engine.begin() as conn:
            sealed = audit.seal(conn, key, limit=BATCH)
        total, head = total + sealed.count, sealed.head or head
        if sealed.count < BATCH:
            break
    if head is not None:
        log.info("audit chain sealed %d record(s); head seq %s hash %s", total, *head)
    return total


def verify(engine: Engine, key: bytes, roots: list[asn1_x509.Certificate] | None = None, *,
           anchor_signatures: int | None = audit_anchors.NEWEST_SIGNATURES,
           track: Track = untracked) -> dict[str, Any]:
    """Walk the chain, then hold it against the TSA anchors: records removed from its end show up there.
    With `roots`, the newest `anchor_signatures` anchors' tokens (None: all) are checked against the TSA."""
    walk = ChainCheck(key)
    problems = []
    with engine.connect() as conn:
        anchors = [dict(a) for a in packages.anchors(conn)]
        anchored = {a["seq"] for a in anchors}
        found: dict[int, str] = {}
        whole = True
        head = audit.head(conn)  # its seq is how many records an intact chain holds: it counts from 1
        for record in track(audit.sealed_in_order(conn), head["seq"] if head else 0):
            problems += walk.feed(record)
            if record["seq"] in anchored:
                found[record["seq"]] = record["hash"]
            if len(problems) >= MAX_PROBLEMS:
                whole = False
                break
        unsealed = audit.unsealed_count(conn)
    head_seq = walk.expected_seq - 1
    if whole:  # a walk stopped early knows not where the chain ends
        problems += anchor_problems(anchors, found, head_seq)
    forged, checked = audit_anchors.token_problems(anchors, roots, signatures=anchor_signatures)
    problems += forged
    newest = anchors[-1] if anchors else None
    return {"ok": not problems, "checked": walk.checked, "unsealed": unsealed,
            "head": {"seq": head_seq, "hash": walk.prev_hash} if walk.checked else None,
            "anchors": {"count": len(anchors), "signatures_checked": checked,
                        "newest": {"id": newest["id"], "seq": newest["seq"], "hash": newest["hash"],
                                   "time": newest["timestamp_at"].astimezone(UTC).isoformat()} if newest else None,
                        # The records a cut at the end could remove unseen: those after the newest anchor.
                        "unanchored_records": max(0, head_seq - newest["seq"]) if newest else head_seq},
            "problems": [p.as_dict() for p in problems[:MAX_PROBLEMS]]}
