"""What the gateway sends the national portal (DongBoHoSoMC) it takes back from the portal as the same dossier.

Property test over generated dossiers: dossier_to_dvcqg's record, through JSON as on the wire, is accepted
by DvcqgDossierIn and maps back (to_dossier) to the dossier it came from, in every field the record
carries. It does not carry the address, attachment content or hash, or the form: those are left out here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.adapters.national_portal.mapping import (
    DEFAULT_LEVEL,
    DvcqgDossierIn,
    dossier_to_dvcqg,
    dvcqg_field,
)
from gateway.domain.dossier import VN_TZ, DossierIn

# Deterministic (house rule): the same examples every run, no time limit per example.
ROUND_TRIP = settings(max_examples=150, derandomize=True, deadline=None, database=None)

unit_codes = st.from_regex(r"\A[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}\Z")
days = st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2099, 12, 31).date())
dossier_codes = st.builds(lambda unit, day, n: f"{unit}-{day:%y%m%d}-{n:04d}", unit_codes, days,
                          st.integers(0, 9999))
procedure_codes = st.from_regex(r"\A[0-9]\.[0-9]{6}(\.[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2})?\Z")
# Vietnamese and other letters, digits, punctuation, inner spaces; both ends trimmed as both models trim them.
words = st.text(st.characters(codec="utf-8", categories=("L", "M", "N", "P", "Zs")), min_size=1, max_size=60)
texts = words.map(str.strip).filter(bool)
component_codes = st.from_regex(r"\A[A-Z0-9]{1,10}\Z")
moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30),
                       timezones=st.sampled_from([VN_TZ, UTC])).map(lambda t: t.replace(microsecond=0))


@st.composite
def dossiers(draw: st.DrawFn) -> dict[str, Any]:
    fee_codes = draw(st.lists(st.from_regex(r"\A[A-Z0-9]{1,12}\Z"), max_size=4, unique=True))
    attachment_ids = draw(st.lists(st.from_regex(r"\A[a-z0-9-]{1,40}\Z"), max_size=3, unique=True))
    return {
        "code": draw(dossier_codes),
        "procedure_code": draw(procedure_codes),
        "procedure_name": draw(texts),
        "level": draw(st.sampled_from(["mot_phan", "toan_trinh"])),
        "applicant": {
            "type": draw(st.sampled_from([1, 2, 3, 4])),
            "full_name": draw(texts),
            "id_number": draw(st.from_regex(r"\A([0-9]{12}|[0-9]{9})\Z")),
            "phone": draw(st.none() | st.from_regex(r"\A(0|84)[35789][0-9]{8}\Z")),
            "email": draw(st.none() | st.from_regex(r"\A[a-z0-9.]{1,20}@[a-z0-9]{1,20}\.vn\Z")),
        },
        "summary": draw(st.just("") | texts),
        "submitted_at": draw(moments).isoformat(),
        "channel": draw(st.sampled_from([1, 2, 3])),
        "delivery_method": draw(st.sampled_from(["counter", "post", "online"])),
        "fees": [{"code": c, "name": draw(texts), "amount": draw(st.integers(0, 10**12))} for c in fee_codes],
        "attachments": [{"id": i, "name": draw(texts), "component_code": draw(st.none() | component_codes),
                         "url": f"https://dichvucong.example.gov.vn/files/{i}.pdf"} for i in attachment_ids],
    }


def snapshot_of(dossier: DossierIn) -> dict[str, Any]:
    # What the sync job carries: the filed dossier plus its state.
    return {**dossier.model_dump(mode="json"), "status": 1, "due_at": None, "returned_at": None}


def on_the_wire(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, ensure_ascii=False))


@ROUND_TRIP
@given(dossiers())
def test_what_we_send_comes_back_as_the_same_dossier(body: dict[str, Any]) -> None:
    sent = DossierIn.model_validate(body)
    record = on_the_wire(dossier_to_dvcqg(snapshot_of(sent)))
    incoming = DvcqgDossierIn.model_validate(record)
    back = DossierIn.model_validate(incoming.to_dossier({sent.procedure_code: sent.level}))
    assert back.model_dump() == sent.model_dump()


@ROUND_TRIP
@given(dossiers())
def test_without_a_catalogue_entry_the_level_is_the_default(body: dict[str, Any]) -> None:
    record = on_the_wire(dossier_to_dvcqg(snapshot_of(DossierIn.model_validate(body))))
    assert "MucDo" not in record  # DongBoHoSoMC has no level field
    back = DossierIn.model_validate(DvcqgDossierIn.model_validate(record).to_dossier({}))
    assert back.level == DEFAULT_LEVEL


def record_of(**overrides: Any) -> dict[str, Any]:
    from mocks.provincial_portal import sample_dossier

    body = sample_dossier("000.00.17.H31-240725-0001")
    return {**on_the_wire(dossier_to_dvcqg(snapshot_of(DossierIn.model_validate(body)))), **overrides}


def test_older_field_names_are_read_when_the_portals_are_absent() -> None:
    record = record_of(NgayTiepNhan="", NgayNopHoSo="20240725101500", HinhThucNhanKetQua="2",
                       SoDinhDanh="001190099999")
    del record["HinhThuc"], record["DinhDanhCHS"]
    back = DvcqgDossierIn.model_validate(record).to_dossier()
    assert back["submitted_at"] == "2024-07-25T10:15:00+07:00" and back["delivery_method"] == "online"
    assert back["applicant"]["id_number"] == "001190099999"
    # Present, the portal's own names win.
    both = DvcqgDossierIn.model_validate(record_of(NgayNopHoSo="20240101000000", HinhThucNhanKetQua="2"))
    assert both.to_dossier()["submitted_at"] == "2024-07-25T09:15:00+07:00"
    assert both.to_dossier()["delivery_method"] == "post"


def test_gia_as_number_or_digit_string_never_a_fraction() -> None:
    for gia in (8000, "8000", "8000.00"):
        fees = DvcqgDossierIn.model_validate(record_of(DanhSachLePhi=[
            {"MaPhiLePhi": "LP", "TenPhiLePhi": "Lệ phí", "Gia": gia}])).to_dossier()["fees"]
        assert fees == [{"code": "LP", "name": "Lệ phí", "amount": 8000}]
    for gia in ("8000.5", 8000.5, "tám nghìn", True):
        with pytest.raises(ValidationError) as exc:
            DvcqgDossierIn.model_validate(record_of(DanhSachLePhi=[
                {"MaPhiLePhi": "LP", "TenPhiLePhi": "Lệ phí", "Gia": gia}]))
        assert [e["loc"] for e in exc.value.errors()] == [("DanhSachLePhi", 0, "Gia")]


@pytest.mark.parametrize("drop,field", [
    ("DinhDanhCHS", "DinhDanhCHS"), ("NgayTiepNhan", "NgayTiepNhan"), ("MaHoSo", "MaHoSo"),
    ("ChuHoSo", "ChuHoSo"), ("TenTTHC", "TenTTHC"),
])
def test_refused_only_for_what_a_dossier_cannot_do_without(drop: str, field: str) -> None:
    record = record_of()
    del record[drop]
    with pytest.raises(ValidationError) as exc:
        DvcqgDossierIn.model_validate(record)
    assert [e["loc"][0] for e in exc.value.errors()] == [field]


def test_optional_fields_may_be_blank_or_absent() -> None:
    record = record_of(SoDienThoai="", Email="", NgayHenTra="", KenhThucHien="", HinhThuc="", LoaiDoiTuong="")
    for key in ("TrichYeuHoSo", "TaiLieuNop", "DanhSachLePhi", "TrangThaiHoSo", "NgayTra", "MaLinhVuc"):
        del record[key]
    back = DossierIn.model_validate(DvcqgDossierIn.model_validate(record).to_dossier())
    assert (back.applicant.phone, back.applicant.email, back.channel, back.delivery_method) == (
        None, None, 2, "counter")


def test_refusals_of_the_mapped_dossier_name_the_portals_field() -> None:
    assert dvcqg_field("applicant.id_number") == "DinhDanhCHS.0.SoDinhDanh"
    assert dvcqg_field("fees.1.amount") == "DanhSachLePhi.1.Gia"
    assert dvcqg_field("attachments.0") == "TaiLieuNop.0"
    assert dvcqg_field("code") == "MaHoSo"
    assert dvcqg_field("") == ""
