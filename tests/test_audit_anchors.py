"""The audit chain anchored by the TSA: records cut from its end up to the newest anchor are found; a TSA that
is down only delays the next anchor."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
from sqlalchemy import delete, insert, select, update

from gateway.domain.archive import anchor_imprint
from gateway.services.audit import chain as audit_chain
from gateway.store import archive as packages
from gateway.store.tables import audit_anchors, audit_log

from .conftest import dossier_body, wait_for

OPS = {"Authorization": "Bearer dev-ops-key"}
FAST_ANCHORS = {"GATEWAY_ARCHIVE__AUDIT_ANCHOR_MINUTES": "0.005"}  # a period of 0.3 s


@pytest.fixture
def anchoring(gw):  # noqa: ANN001, ANN201
    """The stack with one worker that anchors the chain's head every 0.3 s; the usual worker again after."""
    gw.stop_workers()
    gw.start_worker(**FAST_ANCHORS)
    yield gw
    gw.stop_workers()
    requests.post(f"{gw.tsa.base}/_mock/reset", timeout=5).raise_for_status()
    gw.start_worker()


def newest_anchor(gw) -> dict | None:  # noqa: ANN001
    with gw.gateway.engine.connect() as conn:
        row = packages.last_anchor(conn)
    return dict(row) if row else None


def sealed_top(gw, code: str) -> int | None:  # noqa: ANN001
    """The highest seq of the dossier's audit records, once all are sealed."""
    with gw.gateway.engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(audit_log.c.seq).where(audit_log.c.subject == code))]
    return max(seqs) if seqs and None not in seqs else None


def anchored_past(gw, code: str, at_least: int = 0) -> dict:  # noqa: ANN001
    """The newest anchor once it covers the dossier's records (and seq `at_least`)."""
    top = max(wait_for(lambda: sealed_top(gw, code), what=f"the audit records of {code} sealed"), at_least)
    return wait_for(lambda: (a := newest_anchor(gw)) and a["seq"] >= top and a, 30,
                    what=f"an anchor at or past seq {top}")


def verify(gw) -> dict:  # noqa: ANN001
    r = gw.client.get("/ops/audit/verify", headers=OPS)
    assert r.status_code == 200
    return r.get_json()


def cut_from(gw, seq: int) -> list[dict]:  # noqa: ANN001
    """Delete every sealed record from `seq` on (the newest ones, so no gap is left); the rows, to put back."""
    with gw.gateway.engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.seq >= seq)).mappings()]
        conn.execute(delete(audit_log).where(audit_log.c.seq >= seq))
    return rows


def put_back(gw, rows: list[dict]) -> None:  # noqa: ANN001
    if rows:
        with gw.gateway.engine.begin() as conn:
            conn.execute(insert(audit_log), rows)


def test_records_cut_from_the_end_up_to_an_anchor_are_found(anchoring) -> None:  # noqa: ANN001
    gw = anchoring
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2)
    # The cut below starts two records before the anchor and seq counts from 1: the anchor must be at seq 3 or
    # past. The dossier's own records may be only two when first anchored; the jobs' records come after them.
    anchored_past(gw, code, at_least=3)
    gw.stop_workers()  # no sealer and no anchoring while the log is cut
    anchor = newest_anchor(gw)
    report = verify(gw)
    assert report["ok"] is True, report["problems"]
    assert report["anchors"]["newest"]["id"] == anchor["id"] and report["anchors"]["signatures_checked"] >= 1
    removed = cut_from(gw, anchor["seq"] - 2)
    assert removed
    try:
        report = verify(gw)
        assert report["ok"] is False
        truncated = [p for p in report["problems"] if p["kind"] == "truncated"]
        assert len(truncated) == 1, report["problems"]
        message = truncated[0]["message"]
        assert f"anchor #{anchor['id']}" in message and f"seq {anchor['seq']}" in message, message
        assert f"ends at seq {anchor['seq'] - 3}" in message
        cli = gw.gateway_cli("audit", "verify", "--no-seal")
        assert cli.returncode == 1
        assert [p["kind"] for p in json.loads(cli.stdout)["problems"]] == [p["kind"] for p in report["problems"]]
    finally:
        put_back(gw, removed)
    assert verify(gw)["ok"] is True
    # The CLI, given no --trust, trusts the roots the stack's archive trusts (the mock TSA's), and says so first.
    intact = gw.gateway_cli("audit", "verify", "--no-seal")
    trust = f"{gw.tmp / 'trust'} (2 roots)"
    report = json.loads(intact.stdout)
    assert intact.returncode == 0 and report["ok"] and list(report)[0] == "trust" and report["trust"] == trust, \
        intact.stdout + intact.stderr
    assert f"trusting roots from {trust}\n" in intact.stderr, intact.stderr  # stdout stays the JSON alone


def test_records_cut_after_the_newest_anchor_go_unseen_the_documented_limit(anchoring) -> None:  # noqa: ANN001
    gw = anchoring
    code = gw.file(dossier_body())["code"]
    anchored_past(gw, code)
    gw.stop_workers()
    anchor = newest_anchor(gw)
    later = gw.file(dossier_body())["code"]  # records after the anchor, sealed here (no worker runs)
    audit_chain.seal_all(gw.gateway.engine, gw.settings.audit.key)
    assert sealed_top(gw, later) > anchor["seq"]
    assert verify(gw)["anchors"]["unanchored_records"] >= 1  # the exposure an auditor can see
    removed = cut_from(gw, anchor["seq"] + 1)
    try:
        report = verify(gw)
        assert report["ok"] is True  # nothing anchored them: docs/archive.md says so
        assert report["anchors"]["unanchored_records"] == 0
    finally:
        put_back(gw, removed)
    assert verify(gw)["ok"] is True


def test_an_edited_or_forged_anchor_fails(anchoring) -> None:  # noqa: ANN001
    gw = anchoring
    anchored_past(gw, gw.file(dossier_body())["code"])
    gw.stop_workers()
    anchor = newest_anchor(gw)
    with gw.gateway.engine.connect() as conn:  # a position before it that no anchor names (one anchor a head)
        taken = set(conn.execute(select(audit_anchors.c.seq)).scalars())
        seq = max(s for s in range(1, anchor["seq"]) if s not in taken)
        before = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar_one()
    from mocks.pki import TestPki

    stranger = asyncio.run(TestPki().timestamper().async_timestamp(anchor_imprint(anchor["seq"], anchor["hash"]),
                                                                  "sha256")).dump()
    cases = {  # the anchor moved to an earlier record (the chain agrees): its token does not
        "edited": ({"seq": seq, "hash": before}, "stamps another head"),
        "forged": ({"token": stranger}, "is not trusted"),
    }
    for what, (change, said) in cases.items():
        with gw.gateway.engine.begin() as conn:
            conn.execute(update(audit_anchors).where(audit_anchors.c.id == anchor["id"]).values(**change))
        try:
            report = verify(gw)
            forged = [p for p in report["problems"] if p["kind"] == "anchor_forged"]
            assert report["ok"] is False and forged and said in forged[0]["message"], (what, report["problems"])
            assert f"anchor #{anchor['id']}" in forged[0]["message"]
        finally:
            with gw.gateway.engine.begin() as conn:
                conn.execute(update(audit_anchors).where(audit_anchors.c.id == anchor["id"])
                             .values(seq=anchor["seq"], hash=anchor["hash"], token=anchor["token"]))
    assert verify(gw)["ok"] is True


def test_with_the_tsa_down_anchoring_waits_and_nothing_else_breaks(anchoring) -> None:  # noqa: ANN001
    gw = anchoring
    anchored_past(gw, gw.file(dossier_body())["code"])
    gw.tsa.faults("http_500", 3)
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2)
    gw.wait_jobs(code)  # the dossier goes on as usual
    wait_for(lambda: sum(r.get("fault") == "http_500" for r in gw.tsa.requests()) >= 3, 30,
             what="the anchoring worker's tries while the TSA is down")
    anchor = anchored_past(gw, code)  # then the head is anchored once the TSA is back
    assert all(w.poll() is None for w in gw.workers)
    report = verify(gw)
    assert report["ok"] is True and report["anchors"]["newest"]["seq"] >= anchor["seq"]
