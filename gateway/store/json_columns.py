"""How the JSON columns PostgreSQL sends are read (psycopg calls this for every json value of a result).

orjson parses a dossier's JSON about three times faster than the json module (2.9 against 9.0 µs for an 844-byte
dossier, the check below included), and psycopg's json loading was 4 % of the API's samples at the bench's top
level (docs/performance.md, tenth round). Every value must read as json.loads reads it (tests/test_json_columns.py),
and orjson differs on two kinds of JSON that PostgreSQL's json type keeps:
- an integer beyond 64 bits, which orjson reads as a float (-9223372036854775809 becomes -9.223372036854776e+18)
  without a word: any run of 19 digits sends the text to json instead;
- what orjson refuses (a lone surrogate escape, 1e400, nesting over 1,024 levels): json reads it."""

from __future__ import annotations

import json
from typing import Any

import orjson

_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # a digit: "0"; else " "
_NINETEEN_DIGITS = b"0" * 19  # 2**63 has 19 digits: a shorter integer is within orjson's range


def read_json(data: bytes | bytearray | memoryview | str) -> Any:
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
