"""The electronic archive: a finished dossier becomes a sealed, timestamped package that verifies offline."""

from __future__ import annotations

import base64
import json
import re
import signal
import zipfile
from pathlib import Path

import pytest
import requests

from gateway.domain.archive import EVIDENCE_RECORD
from gateway.services.archive.offline import verify_path
from gateway.services.archive.verify import verify_built
from gateway.signature import evidence_record
from mocks.pki import one_page_pdf, sign
from tests.conftest import dossier_body, wait_for
from tests.terminal import in_terminal


@pytest.fixture
def arch(gw):  # noqa: ANN001, ANN201
    """The stack with the CA's CRLs published and the OCSP mock answering for the CA; both forgotten after."""
    pki = gw.pki
    for name, der in (("vnpt-ca.crl", pki.crl()), ("national-root.crl", pki.root_crl())):
        assert requests.put(f"{gw.ca.base}/_mock/crls/{name}", data=der, timeout=5).ok
    revoked = [{"serial": format(pki.revoked.cert.serial_number, "x"), "at": pki.revoked_at.isoformat()}]
    assert requests.put(f"{gw.ocsp.base}/_mock/issuers/vnpt-ca", json={**pki.ca.as_json(), "revoked": revoked},
                        timeout=5).ok
    yield gw
    for mock in (gw.tsa, gw.ocsp, gw.ca):
        requests.post(f"{mock.base}/_mock/reset", timeout=5).raise_for_status()


def _attachment(id_: str, name: str, data: bytes) -> dict:
    return {"id": id_, "name": name, "component_code": "TK01", "content_base64": base64.b64encode(data).decode()}


def finished_dossier(gw, *attachments: dict) -> str:  # noqa: ANN001
    body = dossier_body(attachments=list(attachments) or [_attachment("to-khai", "To khai.pdf",
                                                                       sign(one_page_pdf(), gw.pki.signer))])
    code = body["code"]
    gw.file(body)
    gw.step(code, 2, officer="Nguyễn Văn Bình")
    gw.step(code, 7, note="Công dân rút hồ sơ")  # withdrawn: a final status
    return code


def package_state(gw, code: str) -> dict | None:  # noqa: ANN001
    return gw.get(f"/api/v1/dossiers/{code}").get_json().get("archive")


def wait_sealed(gw, code: str, timeout: float = 120) -> dict:  # noqa: ANN001
    return wait_for(lambda: (s := package_state(gw, code)) and s["state"] == "sealed" and s, timeout,
                    what=f"the archive package of {code} to be sealed")


def download(gw, code: str, folder: Path) -> Path:  # noqa: ANN001
    r = gw.get(f"/api/v1/dossiers/{code}/archive", key="dev-ops-key")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    path = folder / r.headers["Content-Disposition"].split("filename=")[1].strip('"')
    path.write_bytes(r.data)
    return path


def verdicts(report) -> dict[str, str]:  # noqa: ANN001
    return {i.item: i.verdict for i in report.items}


def stamp_item(n: int) -> str:
    """The report's item for the package's n-th archive timestamp (1: the one it was sealed with)."""
    return f"{EVIDENCE_RECORD} #{n}"


def test_a_finished_dossier_is_sealed_and_verifies_offline(arch, tmp_path) -> None:  # noqa: ANN001
    code = finished_dossier(arch, _attachment("to-khai", "To khai.pdf", sign(one_page_pdf(), arch.pki.signer)),
                            _attachment("anh", "Anh the.png", b"\x89PNG not really"))
    state = wait_sealed(arch, code)
    assert state["verified_at"] and state["retention_years"] == 10 and state["url"].endswith("/archive")
    path = download(arch, code, tmp_path)
    names = set(zipfile.ZipFile(path).namelist())
    assert {"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
            EVIDENCE_RECORD, "data/dossier.json", "data/history.json", "data/metadata.json",
            "data/audit.json", "data/notifications.json", "data/payments.json", "data/deliveries.json"} <= names
    assert any(n.startswith("data/signatures/") and n.endswith(".txt") for n in names)
    report = verify_path(path, arch.tmp / "trust")
    assert report.ok, report.text()
    found = verdicts(report)
    assert found[stamp_item(1)] == "PASSED"
    pdf_items = [i for i in report.items if i.item.startswith("data/attachments/01-")]
    assert pdf_items and all(i.verdict == "PASSED" and "B-LTA" in i.detail for i in pdf_items)
    # The PDF as filed is the first bytes of the extended one.
    packaged = zipfile.ZipFile(path).read(next(n for n in names if n.startswith("data/attachments/01-")))
    filed = base64.b64decode(arch.get(f"/api/v1/dossiers/{code}").get_json()["attachments"][0]["content_base64"])
    assert packaged[:len(filed)] == filed and len(packaged) > len(filed)
    cli = arch.gateway_cli("archive", "verify", str(path), "--trust", str(arch.tmp / "trust"))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "PASSED" in cli.stdout and "%" not in cli.stderr  # not a terminal: no bar
    # In a terminal a bar follows the checks (the files, the name, the timestamps, each signed PDF)...
    screen = in_terminal("archive", "verify", str(path), "--trust", str(arch.tmp / "trust"), env=arch.env)
    label = re.compile(rf"verify {re.escape(path.name)}: (\d+) checks")
    assert screen.returncode == 0 and "100%" in screen.text and "PASSED" in screen.text, screen.text
    assert int(label.search(screen.text).group(1)) == 4, screen.text  # files, name, timestamps, the signed PDF
    # ...but not with --json, whose output a script reads.
    quiet = in_terminal("archive", "verify", str(path), "--trust", str(arch.tmp / "trust"), "--json", env=arch.env)
    assert quiet.returncode == 0 and '"ok": true' in quiet.text, quiet.text
    assert not label.search(quiet.text) and "%" not in quiet.text, quiet.text


def _rewrite(path: Path, out: Path, change) -> Path:  # noqa: ANN001
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            name, data = change(item.filename, src.read(item))
            if name is not None:
                dst.writestr(name, data)
    return out


def test_a_damaged_package_gets_a_clear_verdict_never_a_traceback(arch, tmp_path) -> None:  # noqa: ANN001
    code = finished_dossier(arch)
    wait_sealed(arch, code)
    good = download(arch, code, tmp_path)
    trust = arch.tmp / "trust"
    forged = evidence_record.new_record("sha256", _forged_token(zipfile.ZipFile(good).read("tagmanifest-sha256.txt")),
                                        [])

    def variant(what: str, change) -> Path:  # noqa: ANN001
        (tmp_path / what).mkdir()
        return _rewrite(good, tmp_path / what / good.name, change)

    def flip(name: str, data: bytes):  # noqa: ANN202
        return name, (data[:10] + bytes([data[10] ^ 1]) + data[11:]) if name == "data/history.json" else data

    cases = {
        "edited": (variant("edited", flip), "data/history.json"),
        "renamed": (variant("renamed", lambda n, d: (n.replace("history.json", "history-old.json"), d)),
                    "data/history-old.json"),
        "no timestamp": (variant("nots", lambda n, d: (None if n.startswith("archive-timestamps/") else n, d)),
                         "timestamp"),
        "forged timestamp": (variant("forged", lambda n, d: (n, forged if n == EVIDENCE_RECORD else d)),
                             stamp_item(1)),
    }
    truncated = tmp_path / "truncated" / good.name
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated"] = (truncated, "package")
    for what, (path, item) in cases.items():
        report = verify_path(path, trust)
        assert not report.ok, what
        assert verdicts(report).get(item) == "FAILED", (what, report.text())
    cli = arch.gateway_cli("archive", "verify", str(truncated), "--trust", str(trust))
    assert cli.returncode == 1 and "Traceback" not in cli.stdout + cli.stderr and "FAILED" in cli.stdout


def test_a_renamed_download_passes_with_a_note_and_expect_makes_the_name_a_check(arch, tmp_path) -> None:  # noqa: ANN001
    code = finished_dossier(arch)
    wait_sealed(arch, code)
    renamed = tmp_path / "good.zip"  # as `curl -o`, a browser or a mail attachment names it
    renamed.write_bytes(download(arch, code, tmp_path).read_bytes())
    trust = arch.tmp / "trust"
    report = verify_path(renamed, trust)
    assert report.ok and (report.code, report.version) == (code, 1), report.text()
    note = next(i for i in report.items if i.item == "file name")
    assert note.verdict == "NOTE" and f"dossier {code}, version 1" in note.detail, note.detail
    assert "good.zip" in note.detail and f"{code}.v0001.zip" in note.detail, note.detail
    for expect, ok in ((code, True), (f"{code}.v0001", True), (f"{code}.v0002", False), ("H99-240725-0001", False)):
        checked = verify_path(renamed, trust, expect=expect)
        item = next(i for i in checked.items if i.item == "expected package")
        assert checked.ok is ok and item.verdict == ("PASSED" if ok else "FAILED"), (expect, checked.text())
        assert not any(i.item == "file name" for i in checked.items)  # the check replaces the note
    # The CLI without --trust trusts what the stack's workers trust, and says so first.
    cli = arch.gateway_cli("archive", "verify", str(renamed))
    first, *_, last = cli.stdout.splitlines()
    assert cli.returncode == 0 and first == f"trusting roots from {trust} (2 roots)", cli.stdout + cli.stderr
    assert "NOTE" in cli.stdout and last.startswith("PASSED"), cli.stdout
    wrong = arch.gateway_cli("archive", "verify", str(renamed), "--expect", f"{code}.v0002", "--json")
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["trust"] == f"{trust} (2 roots)", wrong.stdout


def _forged_token(tagmanifest: bytes) -> bytes:
    """A real RFC 3161 token over the right tag manifest, by a TSA nobody trusts."""
    import asyncio
    import hashlib

    from mocks.pki import TestPki

    stamper = TestPki().timestamper()
    return asyncio.run(stamper.async_timestamp(hashlib.sha256(tagmanifest).digest(), "sha256")).dump()


def test_a_package_stamped_by_an_untrusted_tsa_is_stored_but_never_counts_as_verified(arch) -> None:  # noqa: ANN001
    set_tsa = f"{arch.tsa.base}/_mock/identity"
    requests.put(set_tsa, json=arch.pki.stranger_tsa.as_json(), timeout=10).raise_for_status()
    try:
        code = finished_dossier(arch)
        state = wait_sealed(arch, code)
    finally:
        requests.put(set_tsa, json=arch.pki.tsa.as_json(), timeout=10).raise_for_status()
    # The check right after sealing caught it: minimisation, which needs verified_at, will keep every body.
    assert state["verified_at"] is None, state
    assert "does not verify" in state["flag"] and stamp_item(1) in state["flag"], state["flag"]


def test_the_check_after_sealing_fails_a_stored_file_that_is_not_the_one_built(tmp_path) -> None:  # noqa: ANN001
    stored = tmp_path / "H1.v0001.zip"
    stored.write_bytes(b"PK the zip, cut short")
    report = verify_built(stored, b"PK the zip, cut short and then some", tmp_path, "H1", [])
    assert not report.ok and "is not the package built" in report.items[0].detail, report.text()


def test_with_the_tsa_down_the_package_waits_flagged_and_seals_once_it_is_back(arch) -> None:  # noqa: ANN001
    arch.tsa.faults("http_500", 3)
    code = finished_dossier(arch)
    flagged = wait_for(lambda: (s := package_state(arch, code)) and s["state"] == "failed" and s, 30,
                       what="the package flagged while the TSA is down")
    assert "time-stamping authority" in flagged["flag"]
    assert arch.get(f"/api/v1/dossiers/{code}/archive", key="dev-ops-key").status_code == 409
    wait_sealed(arch, code)


def test_with_ocsp_and_crls_down_the_package_waits_then_seals(arch) -> None:  # noqa: ANN001
    arch.ocsp.faults("garbage", 3)
    arch.ca.faults("http_500", 6)
    code = finished_dossier(arch)
    flagged = wait_for(lambda: (s := package_state(arch, code)) and s["state"] == "failed" and s, 30,
                       what="the package flagged while OCSP and the CRLs are unreachable")
    assert "revocation" in flagged["flag"].lower() or "ocsp" in flagged["flag"].lower(), flagged["flag"]
    wait_sealed(arch, code)


def test_a_slow_revocation_answer_does_not_cost_the_build_its_database_session(arch) -> None:  # noqa: ANN001
    """No transaction stays open while a build extends the attachments over the network: with the session's
    idle-in-transaction timeout (issue 26) under an OCSP answer's delay, the package still seals at the first try."""
    if arch.name != "production":
        pytest.skip("SQLite has no session to time out")
    arch.stop_workers()
    arch.start_worker(GATEWAY_DATABASE__IDLE_IN_TRANSACTION_TIMEOUT_SECONDS="1")
    try:
        arch.ocsp.faults("delay", 1, seconds=1.5)  # under the fetch timeout (2 s): the answer comes, late
        code = finished_dossier(arch)
        wait_sealed(arch, code, timeout=60)
        assert any(r.get("fault") == "delay" for r in arch.ocsp.requests())
        # The package is stored and sealed a moment before the build job records its own outcome.
        builds = wait_for(lambda: (b := [j for j in arch.jobs(code) if j["kind"] == "archive.build"])
                          and all(j["state"] not in ("pending", "in_flight") for j in b) and b, 30,
                          what="the build job's outcome")
        assert [(j["state"], j["attempts"]) for j in builds] == [("done", 1)], builds
    finally:
        arch.stop_workers()
        arch.start_worker()


def test_a_broken_pdf_among_the_attachments_still_seals_and_says_why(arch, tmp_path) -> None:  # noqa: ANN001
    broken = sign(one_page_pdf(), arch.pki.signer)
    broken = broken[: len(broken) // 2]  # a signed PDF cut in half
    code = finished_dossier(arch, _attachment("hong", "Hong.pdf", broken),
                            _attachment("to-khai", "To khai.pdf", sign(one_page_pdf(), arch.pki.signer)))
    state = wait_sealed(arch, code)
    assert state["verified_at"]
    path = download(arch, code, tmp_path)
    assert verify_path(path, arch.tmp / "trust").ok
    assert any(w.poll() is None for w in arch.workers)


@pytest.mark.slow
def test_a_worker_killed_while_building_leaves_no_half_package_and_the_retry_makes_one(arch) -> None:  # noqa: ANN001
    arch.tsa.faults("delay", 1, seconds=8)
    code = finished_dossier(arch)
    wait_for(lambda: any(r.get("fault") == "delay" for r in arch.tsa.requests()), 30,
             what="the worker waiting on the TSA mid-build")
    arch.stop_workers(signal.SIGKILL)
    folder = arch.archive_folder / code
    assert not list(folder.glob("*.zip")) if folder.exists() else True
    assert package_state(arch, code)["state"] != "sealed"
    arch.start_worker()
    wait_sealed(arch, code, timeout=90)
    assert [p.name for p in folder.glob("*.zip")] == [f"{code}.v0001.zip"]


def test_only_one_stop_portal_and_ops_may_download_and_unknown_is_404(arch) -> None:  # noqa: ANN001
    assert arch.get("/api/v1/dossiers/NO-SUCH/archive", key="dev-ops-key").status_code == 404
    r = arch.get("/api/v1/dossiers/NO-SUCH/archive", key="dev-national-portal-key")
    assert r.status_code == 403 and r.get_json()["error"]["code"]



def test_metrics_count_packages_by_state_and_the_time_to_seal(arch) -> None:  # noqa: ANN001
    code = finished_dossier(arch)
    wait_sealed(arch, code)
    text = arch.get("/metrics", key="dev-ops-key").get_data(as_text=True)
    sealed = next(line for line in text.splitlines() if line.startswith('gateway_archive_packages{state="sealed"}'))
    assert float(sealed.split()[-1]) >= 1
    assert 'gateway_archive_seconds_to_seal{quantile="0.5"}' in text
