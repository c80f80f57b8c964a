"""PDFs that go wrong, built at test time from a signed one: the files a verifier must survive."""

from __future__ import annotations

import io
import re
import zlib

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer

from mocks.pki import one_page_pdf, pdf_file


def flip_signed_byte(pdf: bytes) -> bytes:
    """One byte of the page text changed: inside the signed byte range."""
    out = bytearray(pdf)
    out[pdf.index(b"GIAY KHAI")] = ord("X")
    return bytes(out)


def _contents_span(pdf: bytes) -> tuple[int, int]:
    match = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)
    assert match is not None
    return match.start(1), match.end(1)


def damage_signature_value(pdf: bytes) -> bytes:
    """Flip bits in the signature value itself, leaving the CMS structure parseable."""
    from asn1crypto import cms

    start, end = _contents_span(pdf)
    blob = bytes.fromhex(pdf[start:end].decode())
    signed = cms.ContentInfo.load(blob.rstrip(b"\x00"))
    value = signed["content"]["signer_infos"][0]["signature"].native
    at = blob.index(value) + len(value) // 2
    damaged = blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1:]
    return pdf[:start] + damaged.hex().encode() + pdf[end:]


def zero_contents(pdf: bytes) -> bytes:
    start, end = _contents_span(pdf)
    return pdf[:start] + b"0" * (end - start) + pdf[end:]


def drop_contents(pdf: bytes) -> bytes:
    return pdf.replace(b"/Contents <", b"/Xontents <", 1)


def wrong_byte_range(pdf: bytes) -> bytes:
    """A /ByteRange that skips part of the file: a classic trick to hide content from the signature."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    a, b, c, d = (int(x) for x in match.groups())
    fake = b"/ByteRange [%d %d %d %d]" % (a, b - 10, c, d)
    return pdf[:match.start()] + fake.ljust(match.end() - match.start()) + pdf[match.end():]


def broken_xref(pdf: bytes) -> bytes:
    """Every cross-reference offset and the startxref pointers made nonsense."""
    out = re.sub(rb"\n\d{10} 00000 n", b"\n9999999999 00000 n", pdf)
    return re.sub(rb"startxref\s+\d+", b"startxref\n77", out)


def encrypted(password: str = "mat-khau") -> bytes:
    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(one_page_pdf())))
    writer.encrypt(owner_pass=password, user_pass=password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def deeply_nested(depth: int = 200_000) -> bytes:
    """A catalogue whose AcroForm is an array nested deeper than any parser's stack."""
    return pdf_file([b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields " + b"[" * depth + b"]" * depth + b" >> >>",
                 b"<< /Type /Pages /Kids [] /Count 0 >>"])


def decompression_bomb(expanded_mb: int = 512) -> bytes:
    """A catalogue kept in an object stream that inflates to `expanded_mb` megabytes (half a megabyte on disk)."""
    header = b"1 0 "
    catalogue = b"<< /Type /Catalog /Pages 2 0 R >>"
    packer = zlib.compressobj(9)
    data = packer.compress(header + catalogue)
    chunk = b" " * (1024 * 1024)
    for _ in range(expanded_mb):
        data += packer.compress(chunk)
    data += packer.flush()
    objstm = (b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
              % (len(header), len(data)) + data + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = {}
    offsets[2] = out.tell()
    out.write(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
    offsets[3] = out.tell()
    out.write(b"3 0 obj\n" + objstm + b"\nendobj\n")
    # A cross-reference stream saying object 1 lives in object stream 3.
    rows = (b"\x00\x00\x00\x00\xff\xff" + b"\x02\x00\x00\x00\x03\x00"
            + b"\x01" + offsets[2].to_bytes(4, "big") + b"\x00" + b"\x01" + offsets[3].to_bytes(4, "big") + b"\x00")
    xref_at = out.tell()
    out.write(b"4 0 obj\n<< /Type /XRef /Size 5 /W [1 4 1] /Index [0 4] /Root 1 0 R /Length %d >>\nstream\n"
              % len(rows) + rows + b"\nendstream\nendobj\n")
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref_at)
    return out.getvalue()
