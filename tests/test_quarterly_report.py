"""The quarterly report: the counting rules, then the report of a quarter of real filings on both stacks."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update

from gateway.domain.quarterly_report import Quarter, Tally
from gateway.store.tables import deliveries, dossiers

from .conftest import dossier_body

OPS = {"Authorization": "Bearer dev-ops-key"}


def test_quarters_run_in_vietnamese_time():
    q4 = Quarter(2026, 4)
    assert (q4.start.isoformat(), q4.end.isoformat()) == ("2026-10-01T00:00:00+07:00", "2027-01-01T00:00:00+07:00")
    assert Quarter(2026, 1).end.isoformat() == "2026-04-01T00:00:00+07:00"
    for year, quarter in ((1999, 1), (2026, 0), (2026, 5)):
        with pytest.raises(ValueError):
            Quarter(year, quarter)


def _d(status: int, *, result_at=None, due_at=None, fees=False, paid=False, posted=False) -> dict:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return {"status": status, "result_at": result_at, "due_at": due_at, "has_fees": fees,
            "fees_paid_online_at": at if paid else None, "posted": posted}


def test_rates_count_only_what_they_can_judge():
    early, late = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)
    due = datetime(2026, 11, 5, tzinfo=UTC)
    tally = Tally()
    for d in (_d(10, result_at=early, due_at=due, fees=True, paid=True, posted=True),
              _d(9, result_at=late, due_at=due, fees=True),
              _d(10, result_at=early),  # no appointment date: not judged on time or late
              _d(3), _d(1, fees=True)):
        tally.add(d)
    f = tally.figures()
    assert (f["received"], f["finished"], f["with_result"]) == (5, 3, 3)
    assert (f["on_time"], f["late"], f["on_time_rate"]) == (1, 1, 0.5)
    assert (f["with_fees"], f["paid_online"], f["paid_online_share"]) == (3, 1, 0.3333)
    assert (f["delivered_by_post"], f["post_share"]) == (1, 0.3333)
    assert f["by_status"]["10"] == 2 and f["by_status"]["5"] == 0
    assert Tally().figures()["on_time_rate"] is None  # nothing to judge is not 0 %


def _file(gw, day: str, **overrides) -> str:
    body = dossier_body(submitted_at=f"{day}T09:00:00+07:00", **overrides)
    return gw.file(body)["code"]


def test_the_report_of_a_quarter_as_json_and_csv(gw):
    # 2031 Q2: a quarter no other test files dossiers in.
    on_time = _file(gw, "2031-04-10")
    gw.step(on_time, 2, due_at="2031-04-20T17:00:00+07:00", at="2031-04-10T10:00:00+07:00")
    gw.step(on_time, 9, at="2031-04-18T10:00:00+07:00")
    gw.step(on_time, 10, at="2031-04-19T10:00:00+07:00")
    late = _file(gw, "2031-05-02")
    gw.step(late, 2, due_at="2031-05-10T17:00:00+07:00", at="2031-05-02T10:00:00+07:00")
    gw.step(late, 9, at="2031-05-15T10:00:00+07:00")
    refused = _file(gw, "2031-06-30", fees=[])
    gw.step(refused, 3, at="2031-06-30T10:00:00+07:00", note="Thiếu giấy tờ")
    _file(gw, "2031-05-20", level="mot_phan", channel=1, fees=[])  # a counter filing, một phần
    _file(gw, "2031-07-01")  # the next quarter: not counted
    with gw.gateway.engine.begin() as conn:  # paid online, and booked with the post: as the flows would leave it
        conn.execute(update(dossiers).where(dossiers.c.code == on_time)
                     .values(fees_paid_online_at=datetime(2031, 4, 11, tzinfo=UTC)))
        dossier_id = conn.execute(select(dossiers.c.id).where(dossiers.c.code == on_time)).scalar_one()
        now = datetime.now(UTC)
        conn.execute(insert(deliveries).values(
            reference=f"GH{dossier_id}", dossier_id=dossier_id, dossier_code=on_time, provider="vnpost",
            state="delivered", cod_amount=0, receiver={}, request_fingerprint="x", caller="test", created_at=now,
            updated_at=now))

    r = gw.client.get("/ops/reports/quarterly?year=2031&quarter=2", headers=OPS)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert (report["from"], report["to"]) == ("2031-04-01", "2031-07-01")
    totals = report["totals"]
    assert (totals["received"], totals["finished"], totals["with_result"]) == (4, 2, 2)
    assert (totals["on_time"], totals["late"], totals["on_time_rate"]) == (1, 1, 0.5)
    assert (totals["with_fees"], totals["paid_online"], totals["paid_online_share"]) == (2, 1, 0.5)
    assert (totals["delivered_by_post"], totals["post_share"]) == (1, 0.5)
    rows = {(row["level"], row["channel"]): row for row in report["rows"]}
    assert set(rows) == {("toan_trinh", 2), ("mot_phan", 1)}
    online = rows[("toan_trinh", 2)]
    assert (online["received"], online["by_status"]["10"], online["by_status"]["9"], online["by_status"]["3"]) == (
        3, 1, 1, 1)
    assert online["procedure_name"] == "Đăng ký khai sinh" and online["channel_name"] == "trực tuyến"
    assert rows[("mot_phan", 1)]["by_status"]["1"] == 1 and rows[("mot_phan", 1)]["level_name"] == "một phần"
    assert report["status_labels"]["3"] == "Không được tiếp nhận"

    as_csv = gw.client.get("/ops/reports/quarterly?year=2031&quarter=2&format=csv", headers=OPS)
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert "bao-cao-quy-2-2031.csv" in as_csv.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True).lstrip("\ufeff"))))
    assert [t["procedure_code"] for t in table][-1] == "TOTAL"
    total = table[-1]
    assert (total["received"], total["on_time_rate"], total["status_10"]) == ("4", "0.5", "1")
    assert table[0]["procedure_name"] == "Đăng ký khai sinh"
    assert gw.client.get("/ops/reports/quarterly?year=2031&quarter=2", headers={
        **OPS, "Accept": "text/csv"}).mimetype == "text/csv"
    assert rows[("mot_phan", 1)]["received"] == 1  # the counter filing


@pytest.mark.parametrize("query", ["", "year=2031", "year=2031&quarter=5", "year=abc&quarter=1",
                                   "year=2031&quarter=1&format=xml"])
def test_a_bad_quarter_is_a_400(gw, query):
    r = gw.client.get(f"/ops/reports/quarterly?{query}", headers=OPS)
    assert (r.status_code, r.get_json()["error"]["code"]) == (400, "bad_query")


def test_only_ops_reads_reports(gw):
    r = gw.client.get("/ops/reports/quarterly?year=2031&quarter=2",
                      headers={"Authorization": "Bearer dev-one-stop-key"})
    assert r.status_code == 403
