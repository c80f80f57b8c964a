"""Sealing the audit log into its hash chain, and checking the chain."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from gateway.domain.audit_chain import ChainCheck
from gateway.store import audit

from .progress import Track, untracked

log = logging.getLogger(__name__)

BATCH = 5000
MAX_PROBLEMS = 100  # a wrecked log would otherwise answer with one line per record


def seal_all(engine: Engine, key: bytes) -> int:
    """Seal every record committed so far. The head is logged: a copy outside the database, against which
    a removal of the newest records (which leaves no gap) can be noticed."""
    total = 0
    while True:
        with engine.begin() as conn:
            sealed = audit.seal(conn, key, limit=BATCH)
        total += sealed
        if sealed < BATCH:
            break
    if total:
        with engine.connect() as conn:
            head = audit.head(conn)
        log.info("audit chain sealed %d record(s); head seq %s hash %s", total, head["seq"], head["hash"])
    return total


def verify(engine: Engine, key: bytes, *, track: Track = untracked) -> dict[str, Any]:
    walk = ChainCheck(key)
    problems = []
    with engine.connect() as conn:
        head = audit.head(conn)  # its seq is how many records an intact chain holds: it counts from 1
        for record in track(audit.sealed_in_order(conn), head["seq"] if head else 0):
            problems += walk.feed(record)
            if len(problems) >= MAX_PROBLEMS:
                break
        unsealed = audit.unsealed_count(conn)
    return {"ok": not problems, "checked": walk.checked, "unsealed": unsealed,
            "head": {"seq": walk.expected_seq - 1, "hash": walk.prev_hash} if walk.checked else None,
            "problems": [p.as_dict() for p in problems[:MAX_PROBLEMS]]}
