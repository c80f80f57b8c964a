"""Renewal of archive timestamps: a package stays verifiable after its TSA certificate ends. The clock moves in
the verifier (`at`): the workers renew 180 days ahead, so a TSA certificate ending in ten days is due now."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from gateway.adapters.archive.bag import TAGMANIFEST, zip_bag
from gateway.adapters.archive.bag_writer import bag_files
from gateway.domain.archive import EVIDENCE_RECORD, chain_imprint, token_name
from gateway.services.archive.offline import verify_path

from .conftest import wait_for
from .test_archive import (  # noqa: F401
    arch,
    download,
    finished_dossier,
    package_state,
    stamp_item,
    verdicts,
    wait_sealed,
)

NO_RENEWAL = {"GATEWAY_ARCHIVE__RENEW_BEFORE_DAYS": "0"}  # seals, and renews nothing before the very end


def set_tsa(gw, identity) -> None:  # noqa: ANN001
    requests.put(f"{gw.tsa.base}/_mock/identity", json=identity.as_json(), timeout=10).raise_for_status()


@pytest.fixture
def worker_with(arch) -> Iterator[Callable[..., None]]:  # noqa: ANN001, F811
    """Restart the stack's worker with other settings; the usual worker and TSA again after the test."""

    def restart(**env: str) -> None:
        arch.stop_workers()
        arch.start_worker(**env)

    yield restart
    set_tsa(arch, arch.pki.tsa)
    restart()


def versions(gw, code: str) -> list[str]:  # noqa: ANN001
    return sorted(p.name for p in (gw.archive_folder / code).glob("*.zip"))


def test_a_package_is_renewed_before_its_tsa_certificate_ends(arch, worker_with, tmp_path) -> None:  # noqa: ANN001, F811
    ends = datetime.now(UTC) + timedelta(days=10)
    worker_with(**NO_RENEWAL)
    set_tsa(arch, arch.pki.tsa_ending(ends))
    code = finished_dossier(arch)  # a signed PDF in it: its document timestamp is by the same short-lived TSA
    sealed = wait_sealed(arch, code)
    assert (sealed["version"], sealed["timestamps"]) == (1, 1)
    first = arch.archive_folder / code / f"{code}.v0001.zip"
    first_sha = hashlib.sha256(first.read_bytes()).hexdigest()
    set_tsa(arch, arch.pki.tsa)  # the province's TSA has a certificate that lasts
    arch.tsa.faults("http_500", 2)  # and is down for a moment: the renewal job retries
    worker_with()  # renews 180 days before the newest timestamp's certificates end
    renewed = wait_for(lambda: (s := package_state(arch, code)) and s["version"] == 2 and s, 60,
                       what="the package renewed to version 2")
    assert renewed["timestamps"] == 2 and renewed["flag"] is None and renewed["verified_at"]
    assert sum(r.get("fault") == "http_500" for r in arch.tsa.requests()) == 2
    second = first.with_name(f"{code}.v0002.zip")
    assert versions(arch, code) == [first.name, second.name]
    assert hashlib.sha256(first.read_bytes()).hexdigest() == first_sha == sealed["sha256"]  # never rewritten
    assert download(arch, code, tmp_path).name == second.name  # the API serves the newest
    trust = arch.tmp / "trust"
    assert verify_path(first, trust).ok and verify_path(second, trust).ok
    # A day after the first TSA certificate ended: the first version alone no longer holds, the renewed one does.
    later = ends + timedelta(days=1)
    old = verify_path(first, trust, at=later)
    assert not old.ok and verdicts(old)[stamp_item(1)] == "FAILED", old.text()
    assert "not trusted" in next(i.detail for i in old.items if i.item == stamp_item(1))
    new = verify_path(second, trust, at=later)
    assert new.ok, new.text()
    assert verdicts(new)[stamp_item(1)] == verdicts(new)[stamp_item(2)] == "PASSED"
    assert [t["kind"] for t in new.timestamps] == ["initial", "timestamp renewal"]
    assert [t["judged_at"][:10] for t in new.timestamps] == [new.timestamps[1]["time"][:10], later.date().isoformat()]
    assert any(i.item.startswith("data/attachments/01-") and i.verdict == "PASSED" for i in new.items)
    day = later.strftime("%Y-%m-%d")
    trust_arg = ["--trust", str(trust), "--at", day]
    cli = arch.gateway_cli("archive", "verify", str(first), *trust_arg)
    assert cli.returncode == 1 and "FAILED" in cli.stdout and "Traceback" not in cli.stdout + cli.stderr
    cli = arch.gateway_cli("archive", "verify", str(second), *trust_arg, "--json")
    assert cli.returncode == 0 and json.loads(cli.stdout)["ok"] is True
    arch.wait_idle()
    assert package_state(arch, code)["version"] == 2  # renewed once: the new certificate is not due


def test_a_weak_digest_is_renewed_with_the_configured_one(arch, worker_with) -> None:  # noqa: ANN001, F811
    worker_with(GATEWAY_ARCHIVE__WEAK_DIGESTS='["md5"]')
    code = finished_dossier(arch)
    wait_sealed(arch, code)
    # SHA-256 declared weak (some day): the renewal stamps the chain with SHA-512.
    worker_with(GATEWAY_ARCHIVE__WEAK_DIGESTS='["md5", "sha1", "sha256"]', GATEWAY_ARCHIVE__TIMESTAMP_DIGEST="sha512")
    wait_for(lambda: package_state(arch, code)["version"] == 2, 60, what="the package renewed to version 2")
    report = verify_path(arch.archive_folder / code / f"{code}.v0002.zip", arch.tmp / "trust")
    assert report.ok, report.text()
    assert [t["digest"] for t in report.timestamps] == ["sha256", "sha512"]


def test_a_renewal_that_cannot_help_writes_nothing_and_waits(arch, worker_with) -> None:  # noqa: ANN001, F811
    worker_with(**NO_RENEWAL)
    set_tsa(arch, arch.pki.tsa_ending(datetime.now(UTC) + timedelta(days=10)))
    code = finished_dossier(arch)
    wait_sealed(arch, code)
    worker_with()  # due, but the TSA still signs with the certificate that ends in ten days
    flagged = wait_for(lambda: (s := package_state(arch, code)) and s["flag"] and "not renewed" in s["flag"] and s,
                       60, what="the futile renewal flagged")
    assert "would not last longer" in flagged["flag"] and flagged["version"] == 1
    arch.wait_idle()
    assert versions(arch, code) == [f"{code}.v0001.zip"]
    arch.gateway.renewal.schedule()  # a scan now: the package waits renew_retry_hours, it gets no new job
    assert [j["kind"] for j in arch.jobs(code) if j["kind"] == "archive.renew"] == ["archive.renew"]
    assert package_state(arch, code)["version"] == 1


def test_a_package_sealed_before_evidence_records_still_verifies_and_renews_its_token_chain(arch, tmp_path) -> None:  # noqa: ANN001, F811
    """Packages sealed before batches carry archive-timestamps/0001.tsr over H(tag manifest), and each renewal one
    more token over H(tag manifest || earlier tokens): they stay verifiable, and are renewed the same way."""
    code, trust = "000.00.17.H56-240101-0001", arch.tmp / "trust"
    bag = bag_files({"dossier.json": b"{}\n"}, {"External-Identifier": code})
    bag[token_name(1)] = arch.gateway.archive.tsa.stamp(chain_imprint(bag[TAGMANIFEST], []))
    old = tmp_path / f"{code}.v0001.zip"
    old.write_bytes(zip_bag(bag, f"{code}.v0001"))
    report = verify_path(old, trust)
    assert report.ok and [t["token"] for t in report.timestamps] == ["archive-timestamps/0001.tsr"], report.text()
    renewed = tmp_path / f"{code}.v0002.zip"
    renewed.write_bytes(arch.gateway.renewal._with_new_token(
        code, 2, old, {"tsa_not_after": None, "timestamp_digest": None, "version": 1}, "test", datetime.now(UTC)))
    report = verify_path(renewed, trust)
    assert report.ok, report.text()
    assert [t["token"] for t in report.timestamps] == ["archive-timestamps/0001.tsr", "archive-timestamps/0002.tsr"]
    assert EVIDENCE_RECORD not in zipfile.ZipFile(renewed).namelist()
