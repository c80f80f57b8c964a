"""Two hot spots of verifying a small signed PDF, made fast without changing any answer.

Profiling one verification of a one-page PDF (bench/signatures.py) showed half its time in two places:
- pyHanko reads a hex string one byte at a time, and a signature's /Contents is a hex string of 16-32 KB;
- asn1crypto compares certificate names by RFC 5280 string preparation (Unicode normalisation of every
  attribute, every time), and pyHanko compares names often while matching the signer's certificate.
Both get a fast path that decides only the common case and hands every other case to the original code:
a hex string of hex digits and whitespace only; names compared by their prepared form computed once per
distinct encoding (identical encodings are equal without it). tests/test_signature_speedups.py checks
that the answers are the same.
"""

from __future__ import annotations

import binascii
from typing import Any

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE

_original_read_hex = generic.read_hex_string_from_stream
_original_name_eq = x509.Name.__eq__
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_BLOCK = 64 * 1024


def read_hex_string_from_stream(stream: Any) -> Any:
    start = stream.tell()
    stream.read(1)  # the opening "<"
    chunks: list[bytes] = []
    while True:
        block = stream.read(_BLOCK)
        end = block.find(b">")
        if end >= 0:
            chunks.append(block[:end])
            break
        if not block:  # no closing ">": let the original say what is wrong
            stream.seek(start)
            return _original_read_hex(stream)
        chunks.append(block)
    raw = b"".join(chunks)
    digits = raw.translate(None, PDF_WHITESPACE)
    if digits.translate(None, _HEX_DIGITS):  # a comment or a stray byte inside: the original's business
        stream.seek(start)
        return _original_read_hex(stream)
    stream.seek(start + 1 + len(raw) + 1)
    return generic.pdf_string(binascii.unhexlify(digits + b"0" * (len(digits) % 2)))


_prepared_forms: dict[bytes, str] = {}
_MAX_FORMS = 4096  # a hostile file's thousand names cannot grow it without bound


def _prepared(name: x509.Name, encoding: bytes) -> str:
    """A name's RFC 5280 comparison form (what its equality compares), once per distinct encoding."""
    form = _prepared_forms.get(encoding)
    if form is None:
        form = name.hashable
        if len(_prepared_forms) >= _MAX_FORMS:
            _prepared_forms.clear()
        _prepared_forms[encoding] = form
    return form


def _name_eq(self: x509.Name, other: object) -> bool:
    if not isinstance(other, x509.Name):
        return _original_name_eq(self, other)
    mine, theirs = self.dump(), other.dump()
    return mine == theirs or _prepared(self, mine) == _prepared(other, theirs)


def install() -> None:
    generic.read_hex_string_from_stream = read_hex_string_from_stream
    x509.Name.__eq__ = _name_eq  # type: ignore[method-assign]
    # __hash__ is untouched: equal names keep equal hashes, as before.
