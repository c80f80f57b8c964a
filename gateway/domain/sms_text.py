"""SMS encoding and length: GSM-7 when every character fits, otherwise UCS-2 (Vietnamese with diacritics).

A single GSM-7 SMS holds 160 characters, 153 per part once split (the rest is the concatenation header);
characters of the extension table (€, [, ], {, }, ...) take two. UCS-2 holds 70, 67 per part, counted in
UTF-16 code units. Brandname SMS is often sent without diacritics to stay in GSM-7: a third of the price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from .vietnamese_text import without_diacritics

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
# Typographic punctuation that templates may use, in its GSM-7 form.
_PLAIN_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "..."})


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


# (characters in one message, characters per part of a longer one)
LIMITS: dict[Encoding, tuple[int, int]] = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsLength:
    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def encoding_of(text: str) -> Encoding:
    return Encoding.GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else Encoding.UCS2


def measure(text: str) -> SmsLength:
    encoding = encoding_of(text)
    if encoding is Encoding.GSM7:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    else:
        units = len(text.encode("utf-16-le")) // 2
    single, part = LIMITS[encoding]
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsLength(encoding, units, segments)


def sms_text(text: str, *, diacritics: bool) -> str:
    """The text as sent: Vietnamese as written, or stripped of its marks (and of anything else GSM-7 lacks)."""
    if diacritics:
        return text
    plain = without_diacritics(text).translate(_PLAIN_PUNCTUATION)
    return "".join(c if c in GSM7_BASIC or c in GSM7_EXTENSION else "?" for c in plain)
