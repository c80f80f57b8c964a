"""The change feed's cursor: numbered by readers in the order items became visible, so that writers never wait
for one another to append, and a reader following its cursor never skips an item that committed late."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text

from gateway.store import feed

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _append(conn: Connection, code: str) -> int:
    return feed.append(conn, type="dossier.created", code=code, at=AT, data={"code": code})


def _read(engine, after: int, limit: int = 500) -> list[tuple[int, str]]:  # noqa: ANN001
    """What a reader gets after `after`: (cursor, code) pairs, as the API's feed page reads them."""
    with engine.begin() as conn:
        feed.place(conn)
        return [(int(item["cursor"]), item["code"]) for item in map(feed.as_item, feed.read(conn, after, limit))]


def _postgresql_only(engine) -> None:  # noqa: ANN001
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite holds one write transaction at a time: no item can commit late there")


def test_an_item_that_commits_late_comes_after_those_read_before_it(engine):
    _postgresql_only(engine)
    with engine.connect() as slow:
        slow.begin()
        first_id = _append(slow, "slow")  # drawn first, committed last
        with engine.begin() as quick:
            assert _append(quick, "quick") > first_id
        seen = _read(engine, 0)
        assert [code for _, code in seen] == ["quick"]
        slow.commit()
    later = _read(engine, seen[-1][0])
    assert [code for _, code in later] == ["slow"]  # by id it came before "quick": an id cursor had skipped it
    assert later[0][0] > seen[-1][0]
    assert _read(engine, 0) == seen + later  # and a reader starting over reads them in the same order


def test_writers_do_not_wait_for_one_another_or_for_a_reader(engine):
    _postgresql_only(engine)
    with engine.connect() as writer, engine.connect() as reader:
        writer.begin()
        _append(writer, "open")  # a filing whose transaction has not committed yet
        reader.begin()
        feed.place(reader)  # a reader numbering: it holds the feed's lock until it commits
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail this, not hang
            _append(other, "other")
        reader.commit()
        writer.commit()
    assert sorted(code for _, code in _read(engine, 0)) == ["open", "other"]


def test_a_reading_numbers_a_bounded_part_of_a_long_backlog(engine):
    with engine.begin() as conn:
        for n in range(5):
            _append(conn, f"d{n}")
    with engine.begin() as conn:
        assert feed.place(conn, limit=3) == 3
        assert [row["code"] for row in feed.read(conn, 0, 500)] == ["d0", "d1", "d2"]
    with engine.begin() as conn:
        assert feed.place(conn, limit=3) == 2
        assert feed.place(conn, limit=3) == 0
    cursors = [cursor for cursor, _ in _read(engine, 0)]
    assert [code for _, code in _read(engine, 0)] == [f"d{n}" for n in range(5)]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
