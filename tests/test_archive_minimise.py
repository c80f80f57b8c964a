"""Retention and data minimisation: the retention period per procedure is in the package; once a package is
sealed, verified and past its grace period the database drops the attachment and result bodies, and the API
serves those files from the package. Tests move the clock (the minimiser takes `now`) instead of waiting."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select, update

from gateway.adapters.archive.bag import TAGMANIFEST, zip_bag
from gateway.adapters.archive.bag_writer import bag_files
from gateway.adapters.archive.tsa import TsaClient
from gateway.domain.archive import EVIDENCE_RECORD
from gateway.domain.minimisation import archived_record, kept_because, without_bodies
from gateway.services.archive.offline import roots_from
from gateway.services.archive.verify import verify_package
from gateway.signature import evidence_record
from gateway.store.tables import archive_packages, audit_log, feed_items, jobs, notification_attachments
from mocks.pki import one_page_pdf, sign
from tests.conftest import ServerProcess, dossier_body, wait_for
from tests.test_archive import _attachment, _rewrite, arch, download, package_state, wait_sealed  # noqa: F401

RESULT = b"%PDF-1.4 Giay khai sinh (ban dien tu)"


def package_row(gw, code: str) -> dict:  # noqa: ANN001
    with gw.gateway.engine.connect() as conn:
        return dict(conn.execute(select(archive_packages).where(archive_packages.c.dossier_code == code))
                    .mappings().one())


def minimise(gw, code: str, days: float) -> dict:  # noqa: ANN001
    """Minimisation of this dossier with the clock `days` after its package was sealed; the package's row."""
    gw.gateway.minimiser.minimise_dossier(code, now=package_row(gw, code)["sealed_at"] + timedelta(days=days))
    return package_row(gw, code)


def scan_until_minimised(gw, code: str, days: float) -> dict:  # noqa: ANN001
    """The worker's scans (a batch each, walking on) with the clock moved, until they reach this dossier."""
    now = package_row(gw, code)["sealed_at"] + timedelta(days=days)
    return wait_for(lambda: gw.gateway.minimiser.minimise_due(now=now) >= 0 and (
        row := package_row(gw, code))["minimised_at"] and row, 60, what=f"a scan to minimise {code}")


def bodies_in_database(gw, code: str) -> int:  # noqa: ANN001
    return sum(1 for a in gw.get(f"/api/v1/dossiers/{code}").get_json()["attachments"] if a.get("content_base64"))


def file_with_a_result(gw, *attachments: dict) -> str:  # noqa: ANN001
    """A dossier returned online: its result document is emailed to the applicant (status 9), then it ends (10)."""
    body = dossier_body(delivery_method="online", attachments=list(attachments))
    code = body["code"]
    gw.file(body)
    gw.step(code, 2, officer="Nguyễn Văn Bình")
    gw.step(code, 9, results=[{"name": "Giấy khai sinh.pdf", "content_base64": base64.b64encode(RESULT).decode()}])
    gw.step(code, 10)
    return code


def result_email(gw, code: str) -> dict:  # noqa: ANN001
    """The result email, once sent (a result still being sent keeps its files)."""
    def sent() -> dict | None:
        items = gw.get(f"/api/v1/dossiers/{code}/notifications").get_json()["items"]
        ref = next((i["id"] for i in items if i["template"] == "result_ready" and i["channel"] == "email"), None)
        view = gw.get(f"/api/v1/notifications/{ref}").get_json() if ref else None
        return view if view and view["state"] == "sent" else None

    return wait_for(sent, 30, what=f"the result email of {code} to be sent")


def test_bodies_stay_until_sealed_verified_and_past_the_grace_then_come_from_the_archive(arch) -> None:  # noqa: ANN001, F811
    pdf, png = sign(one_page_pdf(), arch.pki.signer), b"\x89PNG not really"
    arch.tsa.faults("http_500", 10_000)  # the TSA is down: the package cannot be sealed
    try:
        code = file_with_a_result(arch, _attachment("to-khai", "To khai.pdf", pdf),
                                  _attachment("anh", "Anh the.png", png))
        wait_for(lambda: (s := package_state(arch, code)) and s["state"] == "failed", 30, what="a waiting package")
        assert not arch.gateway.minimiser.minimise_dossier(code, now=datetime.now(UTC) + timedelta(days=3650))
        assert bodies_in_database(arch, code) == 2  # not sealed: kept, however late it is
    finally:
        arch.tsa.clear_faults()
    wait_sealed(arch, code)
    sealed = package_row(arch, code)
    with arch.gateway.engine.begin() as conn:  # sealed, but as if it had not verified
        conn.execute(update(archive_packages).where(archive_packages.c.dossier_code == code).values(verified_at=None))
    assert minimise(arch, code, 3650)["minimised_at"] is None and bodies_in_database(arch, code) == 2
    with arch.gateway.engine.begin() as conn:
        conn.execute(update(archive_packages).where(archive_packages.c.dossier_code == code)
                     .values(verified_at=sealed["verified_at"]))
    email = result_email(arch, code)
    assert minimise(arch, code, 29)["minimised_at"] is None and bodies_in_database(arch, code) == 2  # in grace
    before = arch.get(f"/api/v1/dossiers/{code}/attachments/to-khai")
    assert (before.status_code, before.headers["X-Served-From"], before.data) == (200, "database", pdf)

    row = scan_until_minimised(arch, code, 31)
    view = arch.get(f"/api/v1/dossiers/{code}").get_json()
    assert view["archive"]["minimised_at"]
    for attachment, data in zip(view["attachments"], (pdf, png), strict=True):
        assert "content_base64" not in attachment
        kept = attachment["archived"]
        assert (kept["sha256"], kept["length"]) == (hashlib.sha256(data).hexdigest(), len(data)) and kept["dropped_at"]
        served = arch.get(attachment["content_url"])
        assert (served.status_code, served.headers["X-Served-From"], served.data) == (200, "archive", data)
        assert served.headers["ETag"].strip('"') == kept["sha256"]
    assert arch.get(view["attachments"][0]["content_url"]).mimetype == "application/pdf"

    result = arch.get(f"/api/v1/notifications/{email['id']}").get_json()["attachments"][0]
    assert result["dropped_at"] and result["size"] == len(RESULT)
    served = arch.get(result["url"])
    assert (served.status_code, served.headers["X-Served-From"], served.data) == (200, "archive", RESULT)

    with arch.gateway.engine.connect() as conn:  # no copy left in the working database
        contents = conn.execute(select(notification_attachments.c.content, notification_attachments.c.sha256)
                                .where(notification_attachments.c.archive_path.is_not(None),
                                       notification_attachments.c.archive_path.contains(email["id"]))).all()
        assert contents == [(b"", hashlib.sha256(RESULT).hexdigest())]
        copies = [json.dumps(d) for d in conn.execute(select(feed_items.c.data).where(feed_items.c.code == code))
                  .scalars()] + [json.dumps(p) for p in conn.execute(
                      select(jobs.c.payload).where(jobs.c.ordering_key == code)).scalars()]
        assert copies and not any("content_base64" in c for c in copies)
        record = conn.execute(select(audit_log.c.detail).where(audit_log.c.subject == code,
                                                               audit_log.c.action == "archive.minimised")).scalar_one()
    assert record["attachments"] == ["anh", "to-khai"] and record["results"] == 1
    assert record["bytes"] == len(pdf) + len(png) + len(RESULT)
    assert minimise(arch, code, 400)["minimised_at"] == row["minimised_at"]  # once


def test_a_missing_or_damaged_package_keeps_the_bodies_and_is_a_clear_error(arch, tmp_path) -> None:  # noqa: ANN001, F811
    pdf = sign(one_page_pdf(), arch.pki.signer)
    code = file_with_a_result(arch, _attachment("to-khai", "To khai.pdf", pdf))
    wait_sealed(arch, code)
    result_email(arch, code)
    path = arch.archive_folder / package_row(arch, code)["path"]
    good = path.read_bytes()
    flipped = good[:200] + bytes([good[200] ^ 1]) + good[201:]
    path.write_bytes(flipped)  # the disk changed a byte: not the file that was verified
    row = minimise(arch, code, 31)
    assert row["minimised_at"] is None and row["flag"].startswith("bodies kept") and bodies_in_database(arch, code)
    path.write_bytes(good)  # restored from backup
    row = minimise(arch, code, 31)
    assert row["minimised_at"] and not (row["flag"] or "").startswith("bodies kept")
    url = f"/api/v1/dossiers/{code}/attachments/to-khai"
    assert arch.get(url).data == pdf

    path.rename(path.with_name("moved-away"))
    r = arch.get(url)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "archive_package_missing"
    assert "restore it from backup" in r.get_json()["error"]["message"]
    (tmp_path / "in").write_bytes(good)
    member = next(n for n in zipfile.ZipFile(tmp_path / "in").namelist() if n.startswith("data/attachments/01-"))
    cases = {
        "a changed attachment": _rewrite(tmp_path / "in", tmp_path / "edited.zip", lambda n, d: (
            n, d[:-5] + b"XXXXX" if n == member else d)).read_bytes(),
        "a changed manifest": _rewrite(tmp_path / "in", tmp_path / "manifest.zip", lambda n, d: (
            n, d + b"0" * 64 + b"  data/extra\n" if n == "manifest-sha256.txt" else d)).read_bytes(),
        "a truncated file": good[: len(good) // 2],
        "not a zip": b"garbage",
    }
    for what, data in cases.items():
        path.write_bytes(data)
        r = arch.get(url)
        assert r.status_code == 500, what
        error = r.get_json()["error"]
        assert error["code"] == "archive_package_damaged" and code in error["message"], (what, error)
    path.write_bytes(good)
    assert arch.get(url).status_code == 200
    assert arch.get(f"/api/v1/dossiers/{code}/attachments/no-such").status_code == 404


def test_the_retention_period_of_the_procedure_is_in_the_package(arch, tmp_path) -> None:  # noqa: ANN001, F811
    body = dossier_body(procedure_code=arch.PERMANENT_PROCEDURE, procedure_name="Đăng ký kết hôn")
    code = body["code"]
    arch.file(body)
    arch.step(code, 3, note="Thiếu giấy tờ")  # refused: a final status
    state = wait_sealed(arch, code)
    assert state["retention_years"] == 0 and state["retain_until"] is None
    with zipfile.ZipFile(download(arch, code, tmp_path)) as package:
        fields = {f["key"]: f["value"] for f in json.loads(package.read("data/metadata.json"))["fields"]}
        info = package.read("bag-info.txt").decode()
    assert fields["thoi_han_bao_quan"] == "Vĩnh viễn" and fields["bao_quan_den"] is None
    assert "Thoi-Han-Bao-Quan: Vĩnh viễn" in info


def test_without_bodies_drops_only_the_archived_bodies() -> None:
    data = {"attachments": [{"id": "a", "content_base64": "QQ=="}, {"id": "b", "url": "https://x/b.pdf"},
                            {"id": "c", "content_base64": "Qw=="}], "summary": "x"}
    record = archived_record(attachment_id="a", sha256="0" * 64, length=1, path="data/attachments/01-a",
                             dropped_at="2026-01-01T00:00:00+00:00")
    out = without_bodies(data, {1: record})
    assert out["attachments"][0] == {"id": "a", "archived": {k: v for k, v in record.items() if k != "id"}}
    assert out["attachments"][1:] == data["attachments"][1:] and out["summary"] == "x"
    assert without_bodies(data, {3: {**record, "id": "other"}}) is None  # another list: left alone
    assert without_bodies({"attachments": []}, {1: record}) is None


def test_only_a_sealed_verified_package_past_its_grace_lets_the_bodies_go() -> None:
    sealed_at, grace = datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=30)
    package = {"state": "sealed", "sealed_at": sealed_at, "verified_at": sealed_at, "minimised_at": None}
    after = sealed_at + timedelta(days=31)
    assert kept_because(package, now=after, grace=grace) is None
    assert "grace" in kept_because(package, now=sealed_at + timedelta(days=29), grace=grace)
    assert "did not verify" in kept_because({**package, "verified_at": None}, now=after, grace=grace)
    for state in ("pending", "failed"):
        assert "not sealed" in kept_because({**package, "state": state}, now=after, grace=grace)
    assert kept_because({**package, "minimised_at": after}, now=after, grace=grace) == "already dropped"


def test_make_runs_mock_tsa_stamps_what_the_roots_it_writes_verify(tmp_path) -> None:
    """`make run` starts the mocks with --trust-out and trusts that folder for the archive: a package the TSA mock
    seals verifies, so it can also be minimised there."""
    mocks = ServerProcess("mocks-trust", ["mocks", "--smtp-port", "0", "--trust-out", str(tmp_path / "trust")],
                          tmp_path)
    try:
        assert len(list((tmp_path / "trust" / "public").glob("mock-root-*.pem"))) == 1
        identity = requests.get(f"{mocks.url}/tsa/_mock/identity", timeout=5).json()
        assert "Time Stamping" in identity["subject"]
        bag = bag_files({"dossier.json": b"{}\n"}, {"External-Identifier": "H56-1"})
        token = TsaClient(f"{mocks.url}/tsa/", 10).stamp(hashlib.sha256(bag[TAGMANIFEST]).digest())
        bag[EVIDENCE_RECORD] = evidence_record.new_record("sha256", token, [])
        (tmp_path / "H56-1.v0001.zip").write_bytes(zip_bag(bag))
        report = verify_package(tmp_path / "H56-1.v0001.zip", roots_from(tmp_path / "trust"))
        assert report.ok, report.text()
    finally:
        mocks.stop()
