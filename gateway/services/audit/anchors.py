"""The audit chain anchored: its head timestamped by the TSA every `archive.audit_anchor_minutes`, and the
anchors checked when the chain is verified.

The chain alone cannot show that its newest records were deleted (that leaves no gap). An anchor is an RFC
3161 token over the head (seq and hash) at a moment: records later removed from the end leave an anchor
pointing past the chain, or at a position now holding another hash. Anchors live in the database beside the
chain, so each is also logged and copied into the archive packages sealed after it (docs/archive.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from asn1crypto import x509 as asn1_x509
from sqlalchemy import Engine

from gateway.adapters.archive.tsa import TsaClient
from gateway.adapters.base import RetryableError
from gateway.config import ArchiveSettings
from gateway.domain.archive import anchor_imprint
from gateway.domain.audit_chain import Problem
from gateway.signature.timestamp_token import IMPRINT, SIGNATURE, TRUST, check_token, read_token
from gateway.store import archive as packages
from gateway.store import audit, server_clock

log = logging.getLogger(__name__)

NEWEST_SIGNATURES = 20  # anchors whose token signature `audit verify` checks by default (each takes ~5 ms)


class AuditAnchoring:
    """The worker's periodic task. Several workers may run it: the newest anchor's time in the database says
    whether one is due, and one anchor per head is all the table takes."""

    def __init__(self, engine: Engine, tsa: TsaClient, settings: ArchiveSettings) -> None:
        self.engine = engine
        self.tsa = tsa
        self.digest = settings.timestamp_digest
        self.every = timedelta(minutes=settings.audit_anchor_minutes)
        # Looked at this often, so a TSA outage is retried well before the next period.
        self.cadence = min(settings.scan_interval_seconds, self.every.total_seconds())
        self._failures = 0
        self._next_try = 0.0

    def anchor_if_due(self) -> bool:
        """Anchor the head if it moved since the newest anchor and a period has passed; whether it did."""
        if time.monotonic() < self._next_try:
            return False
        now = server_clock.now()
        with self.engine.connect() as conn:
            head = audit.head(conn)
            last = packages.last_anchor(conn)
            last_at = packages.last_anchored_at(conn)
        if head is None or (last is not None and (last["seq"], last["hash"]) == (head["seq"], head["hash"])):
            return False  # nothing sealed yet, or nothing new since the last anchor
        if last_at is not None and now - last_at.astimezone(UTC) < self.every:
            # Not before the period is over: no need to look again until then (a look is three queries).
            self._next_try = time.monotonic() + (self.every - (now - last_at.astimezone(UTC))).total_seconds()
            return False
        if last is not None and head["seq"] < last["seq"]:
            log.error("the audit chain's head (seq %s) is behind its newest anchor (seq %s): records were removed "
                      "from the end; run `gateway audit verify`", head["seq"], last["seq"])
        try:
            token = self.tsa.stamp(anchor_imprint(head["seq"], head["hash"], self.digest), self.digest)
        except RetryableError as exc:
            self._failures += 1
            wait = min(self.every.total_seconds(), self.cadence * 2 ** self._failures)
            self._next_try = time.monotonic() + wait
            log.warning("audit chain head seq %s not anchored (trying again in %.0f s): %s", head["seq"], wait, exc)
            return False
        self._failures = 0
        _, info = read_token(token)
        with self.engine.begin() as conn:
            stored = packages.add_anchor(conn, {"seq": head["seq"], "hash": head["hash"], "token": token,
                                                "timestamp_at": info.gen_time, "created_at": now})
        if stored:  # logged: a copy of the anchor outside the database
            log.info("audit chain anchored: head seq %s hash %s, TSA time %s", head["seq"], head["hash"],
                     info.gen_time.isoformat())
        return stored


def token_problems(anchors: list[Mapping[str, Any]], roots: list[asn1_x509.Certificate] | None, *,
                   signatures: int | None = NEWEST_SIGNATURES) -> tuple[list[Problem], int]:
    """Each anchor's token must stamp that anchor's head (all anchors: a cheap comparison) and, for the newest
    `signatures` (None: all), be validly signed by a TSA trusted at the time it states. Problems, and how many
    signatures were checked (none without `roots`)."""
    problems = []
    checked = 0
    if roots is None or signatures == 0:
        newest: list[Mapping[str, Any]] = []
    else:
        newest = anchors if signatures is None else anchors[-signatures:]
    full = {a["id"] for a in newest}
    for anchor in anchors:
        name = f"the TSA anchor #{anchor['id']} (seq {anchor['seq']})"
        seq, head_hash = anchor["seq"], anchor["hash"]
        try:
            token, info = read_token(anchor["token"])
            expected = anchor_imprint(seq, head_hash, info.digest)
        except ValueError as exc:
            problems.append(Problem(seq, None, "anchor_forged", f"{name}: its token cannot be read ({exc})"))
            continue
        if info.imprint != expected:
            problems.append(Problem(seq, None, "anchor_forged", f"{name}: its token stamps another head: the "
                                                                "anchor's seq or hash was edited"))
            continue
        if anchor["id"] not in full or roots is None:
            continue  # (roots is None only to tell the type checker what `full` already says)
        checked += 1
        check = check_token(token, lambda algorithm, s=seq, h=head_hash: anchor_imprint(s, h, algorithm), roots,
                            info.gen_time)
        if check.problem is not None:
            why = {IMPRINT: "its token stamps another head", SIGNATURE: "its token's signature is invalid",
                   TRUST: f"its TSA ({info.tsa}) is not trusted ({check.detail})"}.get(
                       check.problem, f"its token cannot be checked ({check.detail})")
            problems.append(Problem(seq, None, "anchor_forged", f"{name}: {why}"))
    return problems, checked
