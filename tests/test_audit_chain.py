"""The audit log's hash chain: sealed after commit, and any edit, deletion or reordering named by place."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from gateway.domain.audit_chain import GENESIS, check, link
from gateway.store import audit
from gateway.store.tables import audit_log

from .conftest import dossier_body, wait_for
from .terminal import in_terminal

KEY = b"test-chain-key"
OPS = {"Authorization": "Bearer dev-ops-key"}


def chain(n: int) -> list[dict]:
    records, prev = [], GENESIS
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for i in range(1, n + 1):
        record = {"id": 100 + i, "seq": i, "at": start + timedelta(seconds=i), "actor": "portal",
                  "action": "dossier.filed", "subject": f"H31-240725-{i:04d}", "detail": {"n": i, "tên": "Bình"}}
        record["prev_hash"] = prev
        record["hash"] = prev = link(KEY, prev, record)
        records.append(record)
    return records


def kinds(problems) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in problems]


def test_an_intact_chain_checks_clean():
    assert check(KEY, chain(6)) == []


def test_an_edited_record_is_named():
    records = chain(6)
    records[2]["detail"] = {**records[2]["detail"], "n": 99}
    problems = check(KEY, records)
    assert kinds(problems) == [(3, "edited")]
    assert problems[0].id == 103


def test_a_deleted_record_leaves_a_gap():
    records = chain(6)
    del records[3]
    assert kinds(check(KEY, records)) == [(4, "missing")]


def test_a_deletion_with_the_numbers_closed_up_breaks_the_link():
    records = chain(6)
    del records[3]
    for r in records[3:]:
        r["seq"] -= 1
    assert kinds(check(KEY, records)) == [(4, "out_of_order")]


def test_two_records_swapped_are_both_out_of_order():
    records = chain(6)
    records[1], records[2] = records[2], records[1]
    records[1]["seq"], records[2]["seq"] = 2, 3
    assert kinds(check(KEY, records)) == [(2, "out_of_order"), (3, "out_of_order"), (4, "out_of_order")]


def test_rehashing_without_the_key_does_not_help():
    records = chain(4)
    records[1]["detail"] = {"n": 0}
    records[1]["hash"] = link(b"guessed-key", records[1]["prev_hash"], records[1])
    assert kinds(check(KEY, records))[0] == (2, "edited")


# On both stacks: the worker seals, the API and the CLI check --------------------------------------


def _sealed(gw, subject: str) -> list[dict]:
    with gw.gateway.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.subject == subject)).mappings().all()
    return [dict(r) for r in rows] if rows and all(r["seq"] is not None for r in rows) else []


def verify(gw) -> dict:
    r = gw.client.get("/ops/audit/verify", headers=OPS)
    assert r.status_code == 200
    return r.get_json()


def test_requests_state_changes_and_outbound_calls_are_sealed_and_checked(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2)
    gw.wait_jobs(code)
    records = wait_for(lambda: _sealed(gw, code))
    assert {r["action"] for r in records} >= {"dossier.filed", "dossier.step"}
    portal_jobs = [j["id"] for j in gw.jobs(code) if j["queue"] == "national_portal"]

    def calls() -> list[dict]:  # the sealed records of the calls that delivered this dossier's jobs
        with gw.gateway.engine.connect() as conn:
            rows = conn.execute(select(audit_log).where(audit_log.c.subject == "national_portal",
                                                        audit_log.c.action == "job.done",
                                                        audit_log.c.seq.is_not(None))).mappings().all()
        mine = [dict(r) for r in rows if code in r["detail"]["keys"]]
        return mine if sum(len(r["detail"]["jobs"]) for r in mine) >= len(portal_jobs) else []

    made = wait_for(calls)
    delivered = sorted(j for c in made for j, key in zip(c["detail"]["jobs"], c["detail"]["keys"], strict=True)
                       if key == code)
    assert delivered == sorted(portal_jobs)  # every job named by the call that delivered it, once
    assert {c["detail"]["kind"] for c in made} == {"national_portal.sync_dossier", "national_portal.progress"}
    report = verify(gw)
    assert report["ok"] is True and report["problems"] == []
    assert report["head"]["seq"] >= max(r["seq"] for r in records)


@pytest.mark.parametrize("tamper", ["edit", "delete", "swap"])
def test_tampering_is_found_by_the_api_and_the_cli(gw, tamper):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2)
    records = sorted(wait_for(lambda: _sealed(gw, code) if len(_sealed(gw, code)) >= 2 else []),
                     key=lambda r: r["seq"])
    first, second = records[0], records[1]
    # The worker's sealer keeps extending the chain from its newest record: tamper only behind it, or the
    # sealer would link new records to the tampered head and the restored log would stay broken.
    later = gw.file(dossier_body())["code"]
    wait_for(lambda: _sealed(gw, later))
    engine = gw.gateway.engine
    with engine.begin() as conn:
        if tamper == "edit":
            conn.execute(update(audit_log).where(audit_log.c.id == first["id"])
                         .values(detail={**first["detail"], "source": "forged"}))
        elif tamper == "delete":
            conn.execute(delete(audit_log).where(audit_log.c.id == first["id"]))
        else:
            conn.execute(update(audit_log).where(audit_log.c.id == first["id"]).values(seq=-1))
            conn.execute(update(audit_log).where(audit_log.c.id == second["id"]).values(seq=first["seq"]))
            conn.execute(update(audit_log).where(audit_log.c.id == first["id"]).values(seq=second["seq"]))
    try:
        report = verify(gw)
        assert report["ok"] is False
        found = {(p["seq"], p["kind"]) for p in report["problems"]}
        expected = {"edit": {(first["seq"], "edited")}, "delete": {(first["seq"], "missing")},
                    "swap": {(first["seq"], "out_of_order"), (second["seq"], "out_of_order")}}[tamper]
        assert expected <= found, report["problems"]
        cli = gw.gateway_cli("audit", "verify", "--no-seal")
        assert cli.returncode == 1
        assert json.loads(cli.stdout)["problems"] == report["problems"]
    finally:  # put the log back as it was, for the tests after this one
        with engine.begin() as conn:
            conn.execute(delete(audit_log).where(audit_log.c.id.in_([first["id"], second["id"]])))
            conn.execute(insert(audit_log), [first, second])
    assert verify(gw)["ok"] is True
    assert gw.gateway_cli("audit", "verify").returncode == 0


def test_verifying_a_big_chain_in_a_terminal_shows_a_progress_bar(gw):
    now = datetime.now(UTC)
    with gw.gateway.engine.begin() as conn:  # a few thousand records: the bar is redrawn in steps
        audit.record_many(conn, [{"actor": "cli:test", "action": "test.filler", "subject": f"filler-{i}", "at": now,
                                  "detail": {"n": i}} for i in range(3000)])
    screen = in_terminal("audit", "verify", env=gw.env)
    assert screen.returncode == 0, screen.text
    records = int(re.search(r"verify (\d+) audit records", screen.text).group(1))
    assert records >= 3000 and "#" in screen.text and "100%" in screen.text, screen.text
    assert f"{records}/{records}" in screen.text and '"ok": true' in screen.text, screen.text
    # Not a terminal: no bar, and stdout is the report alone.
    piped = gw.gateway_cli("audit", "verify")
    assert piped.returncode == 0 and json.loads(piped.stdout)["checked"] >= records
    assert "%" not in piped.stderr and "#" not in piped.stderr, piped.stderr
