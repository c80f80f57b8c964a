"""Drift with the national portal, on both stacks with a real worker: mixed traffic while the portal mock drops a
share of the records it answers "done" to and alters others, an operator's change on the portal, a lost dossier,
a code another unit synced; the reconciler finds every dossier whose portal record differs, repairs each one the
gateway owns once through the outbox, hands the others to an operator, and the portal then shows what the
province decided. Also: a repair that does not hold, answers not trusted, the budget."""

from __future__ import annotations

import collections
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update

from gateway.adapters.national_portal.mapping import dvcqg_time
from gateway.store.tables import feed_items, jobs, portal_checks, portal_findings

from .conftest import dossier_body, wait_for
from .test_metrics import value

OPS = {"Authorization": "Bearer dev-ops-key"}
OTHER_UNIT = "000.00.00.H01"


def make_due(gw, codes: list[str]) -> datetime:
    now = datetime.now(UTC)
    with gw.gateway.engine.begin() as conn:
        conn.execute(update(portal_checks).where(portal_checks.c.dossier_code.in_(codes)).values(next_check_at=now))
    return now


def checks(gw, codes: list[str]) -> dict[str, dict[str, Any]]:
    with gw.gateway.engine.connect() as conn:
        return {r["dossier_code"]: dict(r) for r in conn.execute(
            select(portal_checks).where(portal_checks.c.dossier_code.in_(codes))).mappings()}


def findings(gw, codes: list[str]) -> list[dict[str, Any]]:
    with gw.gateway.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(portal_findings).where(
            portal_findings.c.dossier_code.in_(codes)).order_by(portal_findings.c.id)).mappings()]


def unfinished(gw, codes: list[str]) -> list[dict[str, Any]]:
    """The dossiers' national-portal jobs still on their way (not those waiting behind a dead letter)."""
    with gw.gateway.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(jobs.c.id, jobs.c.ordering_key, jobs.c.kind, jobs.c.state).where(
            jobs.c.queue == "national_portal", jobs.c.ordering_key.in_(codes),
            (jobs.c.state == "in_flight") | ((jobs.c.state == "pending") & jobs.c.ready))).mappings()]


def settled(gw, codes: list[str], since: datetime) -> bool:
    """Every dossier looked at since `since` and judged (no repair still waiting to be checked)."""
    seen = checks(gw, codes)
    return (all(c["checked_at"] is not None and c["checked_at"] >= since and c["outcome"] in (
        "clean", "ahead", "foreign") for c in seen.values()) and len(seen) == len(codes)
        and not any(f["state"] == "repairing" for f in findings(gw, codes)) and not unfinished(gw, codes))


def differs(gw, code: str, unit: str) -> str | None:
    """The test's own reading: why the portal's record is not what the gateway says the province decided."""
    view = gw.get(f"/api/v1/dossiers/{code}").get_json()
    held = gw.portal.dossier(code)
    if held is None:
        return "missing"
    if held.get("MaDonVi") != unit:
        return f"unit {held.get('MaDonVi')}"
    decided = sorted((dvcqg_time(h["at"]), h["status"]) for h in view["history"])
    shown = sorted((p["ThoiDiemXuLy"], p["TrangThai"]) for p in held["progress"])
    if decided != shown:
        return f"progress {shown} != {decided}"
    returned = [h["at"] for h in view["history"] if h["status"] == 10]
    expected = {"TrangThaiHoSo": view["status"], "ChuHoSo": view["applicant"]["full_name"],
                "NgayTiepNhan": dvcqg_time(view["submitted_at"]), "NgayHenTra": dvcqg_time(view["due_at"]),
                "NgayTra": dvcqg_time(returned[-1]) if returned else "",
                "SoDinhDanh": view["applicant"]["id_number"],
                "fees": [(f["code"], str(f["amount"]), "1") for f in view["fees"]]}  # none paid online here
    actual = {**{k: held.get(k) for k in expected},
              "SoDinhDanh": (held.get("DinhDanhCHS") or [{}])[0].get("SoDinhDanh"),
              "fees": [(f.get("MaPhiLePhi"), str(f.get("Gia")), f.get("HinhThucThu"))
                       for f in held.get("DanhSachLePhi") or []]}
    return None if actual == expected else f"record {actual} != {expected}"


def sync_as_another_unit(gw, body: dict[str, Any]) -> None:
    """Another system of another unit syncs the same dossier code to the portal first."""
    from gateway.adapters.national_portal.mapping import dossier_to_dvcqg
    from gateway.domain.dossier import DossierIn

    base = gw.portal.base
    session = requests.post(f"{base}/login", json={"username": "gateway", "password": "gateway-secret"},
                            headers={"dstcode": OTHER_UNIT}, timeout=5).json()["session"]
    record = dossier_to_dvcqg({**DossierIn.model_validate(body).model_dump(mode="json"), "status": 4})
    answer = requests.post(f"{base}/service", timeout=5, json={
        "session": session, "madonvi": OTHER_UNIT, "service": "DongBoHoSoMC", "isUpdating": "False",
        "data": [{**record, "ChuHoSo": "Người khác"}]}).json()
    assert answer["error_code"] == 0


def journey(gw, code: str, n: int) -> None:
    gw.step(code, 2, officer="Trần Thị Bích", due_at=f"2024-08-{10 + n % 15:02d}T17:00:00+07:00", note=f"tiếp nhận {n}")
    gw.step(code, 4, note=f"chuyển phòng {n}")
    if n % 2 == 0:
        gw.step(code, 9, note=f"có kết quả {n}")
        gw.step(code, 10, note=f"đã trả {n}")


def feed_of(gw, codes: list[str]) -> list[dict[str, Any]]:
    with gw.gateway.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(feed_items).where(
            feed_items.c.code.in_(codes), feed_items.c.type.like("portal.%")).order_by(feed_items.c.id)).mappings()]


def test_drift_found_repaired_once_and_flagged(gw):
    unit = gw.settings.national_portal.unit_code
    foreign_body = dossier_body()
    sync_as_another_unit(gw, foreign_body)
    # Mixed traffic while the portal drops a share of the records it answers "done" to, and alters others.
    gw.portal.faults("silent_drop", 10_000, share=0.12, services=["DongBoHoSoMC", "CapNhatTienDoHoSoMC"])
    gw.portal.faults("alter", 10_000, share=0.2, services=["DongBoHoSoMC"])
    traffic = [gw.file(dossier_body())["code"] for _ in range(14)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: journey(gw, traffic[n], n), range(len(traffic))))
    try:
        wait_for(lambda: not unfinished(gw, traffic), 60, what="the traffic's jobs through (or dead)")
    except AssertionError:
        raise AssertionError(unfinished(gw, traffic)) from None
    gw.portal.clear_faults()
    # A portal operator changes a dossier's status; the portal loses another one.
    operated, lost = gw.file(dossier_body())["code"], gw.file(dossier_body())["code"]
    for code in (operated, lost):
        gw.step(code, 2, due_at="2024-08-20T17:00:00+07:00")
    gw.wait_jobs(operated), gw.wait_jobs(lost)
    gw.portal.faults("operator_status", 1, services=["CapNhatTienDoHoSoMC"])
    gw.step(operated, 4, note="chuyển phòng")
    gw.wait_jobs(operated)
    gw.portal.faults("lose", 1, services=["CapNhatTienDoHoSoMC"])
    gw.step(lost, 4, note="chuyển phòng")
    gw.wait_jobs(lost)
    foreign = gw.file(foreign_body)["code"]
    gw.wait_jobs(foreign)
    codes = [*traffic, operated, lost, foreign]

    drifted = {code: why for code in codes if (why := differs(gw, code, unit))}
    faults = gw.portal.drift()
    # Drawn at random over concurrent traffic, so which dossiers drift varies; what holds every time: a dropped
    # progress record or create is never made good by a later write, and the traffic did drift somewhere.
    never_healed = {d["MaHoSo"] for d in faults if d["mode"] == "silent_drop"
                    and (d["service"] == "CapNhatTienDoHoSoMC" or d.get("updating") is False)}
    assert {operated, lost, foreign} <= set(drifted)
    assert never_healed <= set(drifted), (never_healed - set(drifted), faults)
    assert set(traffic) & set(drifted), faults
    dead = [j for c in traffic for j in gw.jobs(c) if j["state"] == "dead"]  # a dropped create: "not found" next

    since = make_due(gw, codes)
    wait_for(lambda: settled(gw, codes, since), 120, what="every dossier looked at, repaired ones looked at again")
    found = findings(gw, codes)
    by_code = {f["dossier_code"]: f for f in found}
    assert set(by_code) == set(drifted), [(c, drifted.get(c), by_code.get(c, {}).get("differences"))
                                          for c in set(by_code) ^ set(drifted)]
    assert len(found) == len(by_code)  # one finding a dossier: nothing found, or repaired, twice
    for code, f in by_code.items():
        if code in (operated, foreign):
            assert (f["kind"], f["state"], f["repairs"]) == ({operated: "ahead", foreign: "foreign"}[code],
                                                            "operator", 0), f
        else:
            assert f["kind"] in ("missing", "behind", "fields") and (f["state"], f["repairs"]) == ("repaired", 1), f
    assert by_code[lost]["kind"] == "missing"
    assert not [j for c in traffic for j in gw.jobs(c) if j["state"] == "dead"]  # the "not found" letters resent
    assert all(by_code[j["ordering_key"]]["kind"] == "missing" for j in dead)
    # The portal shows what the province decided, but for what was never the province's to write.
    assert {c for c in codes if differs(gw, c, unit)} == {operated, foreign}
    assert all(gw.portal.dossier(c)["creates"] == 1 for c in codes if c != foreign)
    told = feed_of(gw, codes)
    assert sorted((i["type"], i["code"]) for i in told) == sorted(
        [("portal.repaired", c) for c in by_code if c not in (operated, foreign)]
        + [("portal.needs_attention", operated), ("portal.needs_attention", foreign)])
    assert next(i for i in told if i["code"] == operated)["data"]["differences"]

    # The operator takes the portal's version of the two; the next look finds every dossier clean.
    for code in (operated, foreign):
        r = gw.client.post(f"/ops/portal-drift/{by_code[code]['id']}/accept", headers=OPS)
        assert r.status_code == 200 and r.get_json()["state"] == "accepted"
    again = gw.client.post(f"/ops/portal-drift/{by_code[operated]['id']}/accept", headers=OPS)
    assert again.status_code == 409
    since = make_due(gw, codes)
    wait_for(lambda: settled(gw, codes, since), 60, what="every dossier looked at again")
    assert {c["outcome"] for c in checks(gw, codes).values()} == {"clean"}
    assert len(findings(gw, codes)) == len(found)  # nothing new, nothing repaired twice


def test_a_repair_that_does_not_hold_goes_to_an_operator(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2, due_at="2024-08-20T17:00:00+07:00")
    gw.wait_jobs(code)
    gw.portal.faults("alter", 1, code="NgayHenTra")
    gw.step(code, 9, note="có kết quả")  # its sync is stored with another appointment date
    gw.wait_jobs(code)
    gw.portal.faults("silent_drop", 10_000, services=["DongBoHoSoMC"])  # and every repair dropped
    try:
        make_due(gw, [code])
        max_repairs = gw.settings.national_portal.reconcile.max_repairs
        f = wait_for(lambda: [f for f in findings(gw, [code]) if f["state"] == "operator"], 60,
                     what="the finding handed to an operator")[0]
        assert (f["kind"], f["repairs"]) == ("fields", max_repairs) and str(max_repairs) in f["note"]
        assert [d["field"] for d in f["differences"]] == ["NgayHenTra"]
        wait_for(lambda: not unfinished(gw, [code]), 30, what="the last repair through")
        since = make_due(gw, [code])
        wait_for(lambda: (checks(gw, [code])[code]["checked_at"] or since) > since, 30, what="another look")
        assert findings(gw, [code])[0]["repairs"] == max_repairs  # no more repairs: no loop
        assert [i["type"] for i in feed_of(gw, [code])] == ["portal.needs_attention"]
    finally:
        gw.portal.clear_faults()


def test_answers_not_trusted_are_recorded_and_nothing_is_repaired(gw):
    code = gw.file(dossier_body())["code"]
    gw.wait_jobs(code)
    gw.portal.faults("error_code", 2, code="2", services=["TraCuuHoSo"])  # the portal refuses the look-up itself
    since = make_due(gw, [code])
    row = wait_for(lambda: (c := checks(gw, [code])[code])["outcome"] == "unreadable" and c, 30,
                   what="the answer recorded as not trusted")
    assert "error_code 2" in row["detail"] and row["checked_at"] is None and findings(gw, [code]) == []
    assert [j["kind"] for j in gw.jobs(code)] == ["national_portal.sync_dossier"]  # nothing sent again
    page = gw.client.get("/ops/portal-drift", headers=OPS).get_json()
    assert code in [u["code"] for u in page["unreadable"]]
    gw.portal.clear_faults()
    since = make_due(gw, [code])
    wait_for(lambda: (c := checks(gw, [code])[code])["outcome"] == "clean" and c["checked_at"] >= since, 30,
             what="a clean look once the portal answers")


def test_recheck_now_coverage_and_metrics(gw):
    code = gw.file(dossier_body())["code"]
    gw.wait_jobs(code)
    r = gw.client.post(f"/ops/portal-drift/dossiers/{code}/recheck", headers=OPS)
    assert r.status_code == 202
    wait_for(lambda: checks(gw, [code])[code]["outcome"] == "clean", 30, what="the look asked for")
    assert gw.client.post("/ops/portal-drift/dossiers/000.00.00.H00-000000-0000/recheck",
                          headers=OPS).status_code == 404
    page = gw.client.get("/ops/portal-drift", headers=OPS).get_json()
    assert page["coverage"]["due"] >= 1 and 0 < page["coverage"]["checked_in_window"] <= page["coverage"]["due"]
    text = gw.client.get("/metrics", headers=OPS).get_data(as_text=True)
    assert "gateway_portal_check_coverage " in text and "gateway_portal_checks_due " in text
    assert "gateway_portal_oldest_check_age_seconds " in text
    with gw.gateway.engine.connect() as conn:  # the gauge by kind is the open findings, every kind shown
        open_now = collections.Counter(conn.execute(select(portal_findings.c.kind).where(
            portal_findings.c.state.in_(("repairing", "operator")))).scalars())
    for kind in ("missing", "behind", "fields", "ahead", "foreign"):
        assert value(text, "gateway_portal_drift", kind=kind) == open_now[kind]


def test_the_budget_takes_the_longest_waiting_first(stack, engine):
    """On a database of its own: 30 dossiers due at different times, a page of 8, a rate of 1 a second."""
    from gateway.config import NationalPortalSettings
    from gateway.services.portal_drift.reconciler import PortalReconciler
    from gateway.services.unit_of_work import Context
    from gateway.store.tables import dossiers, portal_reconcile

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in range(30):
            body = dossier_body()
            conn.execute(dossiers.insert().values(
                id=n + 1, code=body["code"], procedure_code="1", procedure_name="x", level="mot_phan", channel=2,
                source="portal", status=4, applicant_name="x", id_number="001190012345", fingerprint="x",
                data={}, received_at=now, last_seq=0, created_at=now, updated_at=now))
            conn.execute(portal_checks.insert().values(dossier_id=n + 1, dossier_code=body["code"], enrolled_at=now,
                                                       next_check_at=now - timedelta(minutes=n), checks=0))
        conn.execute(update(portal_reconcile).values(tokens=0.0, refilled_at=now - timedelta(hours=1)))
    published: list = []
    settings = NationalPortalSettings(reconcile={"rate_per_second": 1, "page_size": 8})
    reconciler = PortalReconciler(Context(engine, stack.settings.jobs, lambda jobs: published.append(jobs) or []),
                                  client=None, settings=settings)
    assert reconciler.schedule() == 8  # an hour of tokens, capped at a page
    with engine.connect() as conn:
        queued = [r["payload"]["code"] for r in conn.execute(select(jobs).order_by(jobs.c.id)).mappings()]
        codes = {r["dossier_id"]: r["dossier_code"] for r in conn.execute(select(portal_checks)).mappings()}
    assert queued == [codes[n] for n in range(30, 22, -1)]  # the longest waiting first
    assert reconciler.schedule() <= 1  # the tokens were spent: one a second from now on
    down = PortalReconciler(Context(engine, stack.settings.jobs, lambda jobs: []), client=None, settings=settings,
                            portal_down=lambda: True)
    with engine.begin() as conn:
        conn.execute(update(portal_reconcile).values(tokens=100.0))
    assert down.schedule() == 0  # nothing asked of a portal taken to be down


def test_the_cli_reads_back_repairs_and_stops_when_the_portal_is_down(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2, due_at="2024-08-20T17:00:00+07:00")
    gw.wait_jobs(code)
    gw.portal.faults("alter", 1, code="ChuHoSo", services=["DongBoHoSoMC"])
    gw.step(code, 9, note="có kết quả")
    gw.wait_jobs(code)
    done = gw.gateway_cli("reconcile", "portal", "--code", code, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["checked"], report["outcomes"], report["repairs_queued"]) == (1, {"fields": 1}, 1)
    assert report["dossiers"][0]["state"] == "repairing"
    wait_for(lambda: gw.portal.dossier(code)["ChuHoSo"] == "Nguyễn Thị Hồng Nhung", 30, what="the repair")
    gw.wait_jobs(code)
    done = gw.gateway_cli("reconcile", "portal", "--code", code)  # text, with the bar's label on stderr
    assert done.returncode == 0 and "1 dossiers read back: clean 1" in done.stdout
    assert "read back 1 dossiers" in done.stderr
    assert findings(gw, [code])[0]["state"] == "repaired"
    since = gw.gateway_cli("reconcile", "portal", "--since", "2999-01-01", "--json")
    assert json.loads(since.stdout)["checked"] == 0
    others = [gw.file(dossier_body())["code"] for _ in range(3)]
    for other in others:
        gw.wait_jobs(other)
    gw.portal.faults("http_500", 10_000, services=["TraCuuHoSo"])
    try:
        down = gw.gateway_cli("reconcile", "portal", *[a for c in others for a in ("--code", c)], "--json")
    finally:
        gw.portal.clear_faults()
    assert down.returncode == 2 and "looks down" in down.stderr
