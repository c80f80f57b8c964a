"""The JSON columns read from PostgreSQL with orjson (store/json_columns.py) read exactly as json.loads reads them,
the JSON orjson refuses included: an integer beyond 64 bits, a lone surrogate escape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from gateway.store.json_columns import read_json
from gateway.store.tables import jobs

ODD = {"big": 2**70 + 1, "negative": -(2**64) - 1, "lone": "\ud800", "text": "Hồ sơ đã được tiếp nhận", "x": 1.5e300}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_any_json_reads_as_json_reads_it(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assume(ascii_only or not any("\ud800" <= c <= "\udfff" for c in text))  # raw, they are not UTF-8: never sent
    expected = json.loads(text)
    for data in (text.encode(), memoryview(text.encode())):
        got = read_json(data)
        assert got == expected and json.dumps(got) == json.dumps(expected)  # 1 is not 1.0, -0.0 is not 0.0


def test_what_orjson_refuses_is_read_by_json(pg_engine):
    at = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    with pg_engine.begin() as conn:
        job_id = conn.execute(insert(jobs).returning(jobs.c.id), {
            "queue": "q", "kind": "k", "ordering_key": "K", "payload": ODD, "state": "done", "attempts": 1,
            "max_attempts": 1, "next_attempt_at": at, "created_at": at, "updated_at": at}).scalar_one()
    with pg_engine.connect() as conn:
        payload = conn.execute(select(jobs.c.payload).where(jobs.c.id == job_id)).scalar_one()
    assert payload == ODD and type(payload["big"]) is int
