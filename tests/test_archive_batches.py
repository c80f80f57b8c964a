"""Batch sealing: dossiers finished together share one archive timestamp, each package still verifies alone with
its reduced hash tree; a TSA failure retries the batch whole; a worker killed mid-batch leaves no package half
sealed; sealing yields to the other queues during a peak, and the sealing lag shows it."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.domain.archive import EVIDENCE_RECORD
from gateway.services.archive.offline import verify_path
from gateway.signature import evidence_record
from gateway.store.tables import audit_log
from tests.conftest import dossier_body, wait_for
from tests.test_archive import (  # noqa: F401
    _attachment,
    _rewrite,
    arch,
    finished_dossier,
    package_state,
    stamp_item,
    verdicts,
    wait_sealed,
)
from tests.test_archive_renewal import worker_with  # noqa: F401

PNG = _attachment("anh", "Anh the.png", b"\x89PNG not really")  # no signed PDF: a package needs only the TSA


@contextmanager
def batch_wait(gw, seconds: float) -> Iterator[None]:  # noqa: ANN001
    """Packages of dossiers finished now wait `seconds` for their batch (the step's own setting, in this process)."""
    before = gw.gateway.context.archive_batch_wait
    gw.gateway.context.archive_batch_wait = seconds
    try:
        yield
    finally:
        gw.gateway.context.archive_batch_wait = before


def timestamp_calls(gw) -> list[dict]:  # noqa: ANN001
    return [r for r in gw.tsa.requests() if r.get("service") == "timestamp"]


def package_file(gw, code: str, version: int = 1) -> Path:  # noqa: ANN001
    return gw.archive_folder / code / f"{code}.v{version:04d}.zip"


def record_of(gw, code: str) -> evidence_record.EvidenceRecord:  # noqa: ANN001
    return evidence_record.load(zipfile.ZipFile(package_file(gw, code)).read(EVIDENCE_RECORD))


def token_of(gw, code: str) -> bytes:  # noqa: ANN001
    return record_of(gw, code)["archive_time_stamp_sequence"][0][0]["time_stamp"].dump()


def tree_of(gw, code: str) -> list:  # noqa: ANN001
    return record_of(gw, code)["archive_time_stamp_sequence"][0][0]["reduced_hashtree"].native or []


def sealed_audit(gw, code: str) -> list[dict]:  # noqa: ANN001
    with gw.gateway.engine.connect() as conn:
        return [r.detail for r in conn.execute(select(audit_log.c.detail).where(
            audit_log.c.subject == code, audit_log.c.action == "archive.sealed"))]


def finish_together(gw, n: int, wait: float = 4.0) -> list[str]:  # noqa: ANN001
    with batch_wait(gw, wait):
        return [finished_dossier(gw, PNG) for _ in range(n)]


def sealed_together(gw, n: int) -> tuple[list[str], int]:  # noqa: ANN001
    """`n` dossiers finished together, their packages sealed: their codes, and how many timestamps that took."""
    calls = len(timestamp_calls(gw))
    codes = finish_together(gw, n)
    for code in codes:
        wait_sealed(gw, code)
    return codes, len(timestamp_calls(gw)) - calls


def test_dossiers_finished_together_share_one_timestamp_and_each_package_verifies_alone(arch, tmp_path) -> None:  # noqa: ANN001, F811
    codes, timestamps = sealed_together(arch, 3)
    assert timestamps == 1  # one token for the three
    tokens = {token_of(arch, code) for code in codes}
    assert len(tokens) == 1
    for code in codes:  # each its own reduced hash tree to the shared root, its tag manifest's hash in the first list
        own = hashlib.sha256(zipfile.ZipFile(package_file(arch, code)).read("tagmanifest-sha256.txt")).digest()
        assert own in tree_of(arch, code)[0]
    for code in codes:  # the batch's rows are read together: each package holds its own dossier's and no other's
        bag = zipfile.ZipFile(package_file(arch, code))
        data = {name: json.loads(bag.read(f"data/{name}")) for name in ("history.json", "notifications.json",
                                                                         "audit.json")}
        assert [step["status"] for step in data["history.json"]] == [2, 7]
        assert data["notifications.json"] and {n["dossier_code"] for n in data["notifications.json"]} == {code}
        assert {r["subject"] for r in data["audit.json"]["records"]} == {code}
    for code in codes:
        alone = tmp_path / code
        alone.mkdir()
        copy = alone / package_file(arch, code).name
        copy.write_bytes(package_file(arch, code).read_bytes())  # the package alone, away from its batch
        report = verify_path(copy, arch.tmp / "trust")
        assert report.ok, report.text()
        item = next(i for i in report.items if i.item == stamp_item(1))
        assert "through a hash tree of its batch" in item.detail, item.detail
        assert [d["batch"] for d in sealed_audit(arch, code)] == [3]
    cli = arch.gateway_cli("archive", "verify", str(package_file(arch, codes[1])), "--trust", str(arch.tmp / "trust"))
    assert cli.returncode == 0 and re.search(r"PASSED +archive-timestamps/evidence-record.ers #1: sha256 timestamp",
                                              cli.stdout), cli.stdout
    # The auditor's view of a forged proof: each says what is wrong.
    own = zipfile.ZipFile(package_file(arch, codes[0])).read(EVIDENCE_RECORD)
    other = zipfile.ZipFile(package_file(arch, codes[2])).read(EVIDENCE_RECORD)
    tree = tree_of(arch, codes[0])
    tree[-1][0] = bytes([tree[-1][0][0] ^ 1]) + tree[-1][0][1:]
    sibling_changed = evidence_record.new_record("sha256", token_of(arch, codes[0]), tree)
    for what, record, reason in (
            ("a sibling hash changed", sibling_changed, "A hash of the tree was changed, or the token belongs to "
                                                        "another batch"),
            ("another package's proof", other, "not in the first list of its reduced hash tree")):
        (tmp_path / what).mkdir()
        forged = _rewrite(package_file(arch, codes[0]), tmp_path / what / package_file(arch, codes[0]).name,
                          lambda n, d, record=record: (n, record if n == EVIDENCE_RECORD else d))
        report = verify_path(forged, arch.tmp / "trust")
        item = next(i for i in report.items if i.item == stamp_item(1))
        assert not report.ok and item.verdict == "FAILED" and reason in item.detail, (what, report.text())
    assert own != other


def test_a_batch_takes_at_most_batch_size_packages_and_a_batch_of_one_needs_no_tree(arch, worker_with) -> None:  # noqa: ANN001, F811
    worker_with(GATEWAY_ARCHIVE__BATCH_SIZE="2")
    codes, timestamps = sealed_together(arch, 3)
    assert timestamps == 2
    tokens = [token_of(arch, code) for code in codes]
    assert tokens[0] == tokens[1] != tokens[2]  # the oldest two together, the third in a batch of its own
    assert tree_of(arch, codes[2]) == []  # degenerate: the token stamps the tag manifest's hash itself
    report = verify_path(package_file(arch, codes[2]), arch.tmp / "trust")
    assert report.ok and report.timestamps[0]["tree_levels"] == 0, report.text()


def test_a_batch_holds_no_more_packages_in_memory_than_its_budget(arch, worker_with) -> None:  # noqa: ANN001, F811
    """A batch's packages are held in memory until their timestamp: past archive.batch_memory_mb, the ones made go
    under a timestamp of their own, so a batch of large dossiers never holds fifty of them. Here every package is
    past the budget (1 kB): three timestamps, each package whole and verifying."""
    worker_with(GATEWAY_ARCHIVE__BATCH_MEMORY_MB="0.001")
    codes, timestamps = sealed_together(arch, 3)
    assert timestamps == 3
    assert len({token_of(arch, code) for code in codes}) == 3
    for code in codes:
        assert tree_of(arch, code) == []
        report = verify_path(package_file(arch, code), arch.tmp / "trust")
        assert report.ok, report.text()


def test_a_tsa_failure_retries_the_whole_batch_and_seals_each_package_once(arch) -> None:  # noqa: ANN001, F811
    arch.tsa.faults("http_500", 1)
    calls = len(timestamp_calls(arch))
    codes = finish_together(arch, 3)
    for code in codes:
        wait_sealed(arch, code)
    made = timestamp_calls(arch)[calls:]
    assert [r.get("fault") for r in made] == ["http_500", None]  # the batch failed once, then went whole
    assert len({token_of(arch, code) for code in codes}) == 1
    for code in codes:
        assert [p.name for p in (arch.archive_folder / code).glob("*.zip")] == [package_file(arch, code).name]
        assert len(sealed_audit(arch, code)) == 1
        assert package_state(arch, code)["attempts"] >= 1  # it was flagged while it waited


def test_a_package_stored_by_a_worker_that_died_before_recording_it_is_adopted_not_sealed_again(
        arch, monkeypatch) -> None:  # noqa: ANN001, F811
    arch.stop_workers()
    codes = finish_together(arch, 2, wait=0)

    class Killed(BaseException):
        """The worker dies between writing the batch's files and recording them."""

    def die(*_args, **_kw) -> None:  # noqa: ANN002, ANN003
        raise Killed

    monkeypatch.setattr(arch.gateway.archive, "record_versions", die)
    with pytest.raises(Killed):
        arch.gateway.archive.seal_many([{"code": c} for c in codes])
    monkeypatch.undo()
    for code in codes:  # whole files under their names, but nothing recorded: no package is sealed yet
        assert package_file(arch, code).is_file() and package_state(arch, code)["state"] != "sealed"
    for code in codes:  # nothing else left behind: no temporary file, no half package
        assert list(package_file(arch, code).parent.iterdir()) == [package_file(arch, code)]
    written = {code: package_file(arch, code).read_bytes() for code in codes}
    arch.start_worker()
    for code in codes:
        state = wait_sealed(arch, code)
        assert state["version"] == 1 and state["verified_at"], state
        assert [d["adopted"] for d in sealed_audit(arch, code)] == [True]
        assert package_file(arch, code).read_bytes() == written[code]  # the very file, not a second seal
        assert not package_file(arch, code, 2).exists()


@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_no_package_half_sealed(arch) -> None:  # noqa: ANN001, F811
    arch.tsa.faults("delay", 1, seconds=8)
    codes = finish_together(arch, 3)
    wait_for(lambda: any(r.get("fault") == "delay" for r in arch.tsa.requests()), 30,
             what="the worker waiting on the TSA mid-batch")
    arch.stop_workers(signal.SIGKILL)
    for code in codes:
        folder = arch.archive_folder / code
        assert not list(folder.glob("*.zip")) if folder.exists() else True
        assert package_state(arch, code)["state"] != "sealed"
    arch.start_worker()
    for code in codes:
        wait_sealed(arch, code, timeout=90)
        assert [p.name for p in (arch.archive_folder / code).glob("*.zip")] == [package_file(arch, code).name]
        assert len(sealed_audit(arch, code)) == 1
    assert len({token_of(arch, code) for code in codes}) == 1  # the batch came back whole after the lease


def _lag(gw) -> float:  # noqa: ANN001
    text = gw.get("/metrics", key="dev-ops-key").get_data(as_text=True)
    return float(re.search(r"^gateway_archive_sealing_lag_seconds (\S+)$", text, re.M).group(1))


def test_sealing_yields_to_a_backlog_on_the_other_queues_and_catches_up_after(arch, worker_with) -> None:  # noqa: ANN001, F811
    # One portal job a claim and a slow portal: the national portal's jobs pile up, due and unclaimed (a peak).
    worker_with(GATEWAY_JOBS__BATCH_SIZE="1", GATEWAY_ARCHIVE__DEFER_BACKLOG="3")
    arch.portal.faults("delay", 10_000, seconds=0.6)
    try:
        for _ in range(30):
            arch.file(dossier_body())
        code = finished_dossier(arch, PNG)
        log = arch.tmp / f"worker-{arch._worker_logs - 1}.log"
        wait_for(lambda: "archive waits: more than 3 jobs wait on the other queues" in log.read_text(), 60,
                 what="sealing to wait for the portal's backlog")
        assert package_state(arch, code)["state"] == "pending"
        wait_for(lambda: _lag(arch) > 1, 30, what="the sealing lag to grow while the package waits")
        assert package_state(arch, code)["state"] == "pending"
    finally:
        arch.portal.clear_faults()
    wait_sealed(arch, code, timeout=120)
    wait_for(lambda: _lag(arch) == 0, 60, what="no package waiting: the lag back to 0")
