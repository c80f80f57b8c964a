"""Vietnamese text for systems that only take ASCII (VNPay's order info; brandname SMS in GSM-7)."""

from __future__ import annotations

import unicodedata

# Letters that are not a base letter plus combining marks, so NFD leaves them whole.
_LETTERS = str.maketrans({"đ": "d", "Đ": "D"})


def without_diacritics(text: str) -> str:
    """'Lệ phí đăng ký khai sinh' -> 'Le phi dang ky khai sinh'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
