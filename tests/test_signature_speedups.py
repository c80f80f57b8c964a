"""The fast paths give the very answers of the code they stand in for."""

from __future__ import annotations

import io

import pytest
from asn1crypto import x509
from pyhanko.pdf_utils.misc import PdfStreamError

from gateway.signature import speedups


@pytest.mark.parametrize("data", [
    b"<48656C6C6F> rest", b"<48 65\n6C\t6C 6F>", b"<486>", b"<>", b"<4a4B>>", b"<%comment\n41>",
    b"<41 42" + b" " * 70_000 + b"43>", b"<" + b"00" * 40_000 + b"ff>tail",
])
def test_hex_strings_read_as_before(data):
    ours, theirs = io.BytesIO(data), io.BytesIO(data)
    assert speedups.read_hex_string_from_stream(ours) == speedups._original_read_hex(theirs)
    assert ours.tell() == theirs.tell()  # the stream is left just after the closing ">"


@pytest.mark.parametrize("data", [b"<41 4G>", b"<4142"])
def test_bad_hex_strings_fail_as_before(data):
    with pytest.raises(PdfStreamError):
        speedups._original_read_hex(io.BytesIO(data))
    with pytest.raises(PdfStreamError):
        speedups.read_hex_string_from_stream(io.BytesIO(data))


def _name(**fields: str) -> x509.Name:
    return x509.Name.build(fields)


NAMES = [
    _name(common_name="Nguyễn Văn An", organization_name="UBND xã Tân Lập", country_name="VN"),
    _name(common_name="nguyễn  văn an", organization_name="UBND XÃ TÂN LẬP", country_name="VN"),
    _name(common_name="Nguyễn Văn An", organization_name="UBND xã Tân Lập", country_name="VN"),
    _name(common_name="Nguyễn Văn Bình", organization_name="UBND xã Tân Lập", country_name="VN"),
    _name(common_name="Nguyễn Văn An", country_name="VN"),
    x509.Name.build({"common_name": "Tran Van An", "country_name": "VN"}, use_printable=True),  # PrintableString
    _name(common_name="TRAN  VAN AN", country_name="VN"),  # UTF8String, other case and spacing
]


@pytest.mark.parametrize("i", range(len(NAMES)))
@pytest.mark.parametrize("j", range(len(NAMES)))
def test_names_compare_as_before(i, j):
    a, b = NAMES[i], NAMES[j]
    assert speedups._name_eq(a, b) == speedups._original_name_eq(a, b)


def test_names_still_differ_from_other_things():
    assert speedups._name_eq(NAMES[0], "Nguyễn Văn An") is False
