"""The archive's JSON files, written with orjson, are the bytes json.dumps gave them: a package sealed after the
change reads as one sealed before it, byte for byte, but for a small float's exponent (the same number).

The referee is the standard library with the arguments the package format was defined with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.services.archive.contents import json_file


def _as_json_gave(data: object) -> bytes:
    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, bytes):
            return {"bytes": len(value)}
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=default).encode() + b"\n"


# What a package's files hold: text in any script (no lone surrogates: the API refuses them), whole numbers
# (amounts in đồng, counts), flags, nulls, aware times in any offset, file contents (shown by their size).
_text = st.text(st.characters(exclude_categories=("Cs",)))
_times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                      timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))]))
_leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _text | _times
           | st.binary(max_size=8))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                       max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_a_file_is_the_bytes_json_dumps_gave(data: object) -> None:
    assert json_file(data) == _as_json_gave(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5))
def test_floats_read_back_as_the_same_numbers(numbers: list[float]) -> None:
    assert json.loads(json_file({"n": numbers})) == json.loads(_as_json_gave({"n": numbers}))


def test_what_json_cannot_hold_is_refused_as_before() -> None:
    with pytest.raises(TypeError):
        json_file({"a": {1, 2}})
    with pytest.raises(TypeError):
        _as_json_gave({"a": {1, 2}})
