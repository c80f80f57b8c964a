"""The database's clock, read through this host's: the one time every host of a deployment agrees on.

Leases, schedules and every time the hosts compare (a job's next attempt, a lease's end, a payment's expiry)
are written by one host and compared by another. Taken from each host's own clock, a host 90 s ahead claims
retries before they are due, calls leases of the others expired 90 s early (and runs their jobs beside them),
and an API host behind makes new jobs wait (issue 26). So the gateway's time is the database's: each process
measures its clock's offset from PostgreSQL's (a round trip, halved) at start and every minute after, and
`now()` is its own clock plus that offset, with no round trip per call. SQLite is one host's file: offset 0.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

RESYNC_SECONDS = 60.0  # a host's clock stepped by NTP is followed within this
# Hosts kept by NTP agree to within milliseconds, and a leases' or schedules' comparison does not care about
# less than this; a smaller measure is the round trip's asymmetry, not a clock that is off. Taken as 0, so
# that hosts in step (and processes on one host) use their own clocks exactly, as the tests do.
TOLERANCE = timedelta(seconds=0.5)
_offset = timedelta(0)  # the database's clock minus this host's
_lock = threading.Lock()
_reading = threading.Lock()  # the keeper's reading of _engine's clock, and letting go of _engine
_keeper: threading.Thread | None = None
_engine: Engine | None = None  # the one the keeper measures: the latest given (a process has one database)


def now() -> datetime:
    """The database's time now (UTC, aware)."""
    return datetime.now(UTC) + _offset


def offset() -> timedelta:
    return _offset


def measure(engine: Engine) -> timedelta:
    """The database's clock minus this host's, to within half a round trip."""
    if engine.dialect.name != "postgresql":
        return timedelta(0)
    with engine.connect() as conn:
        sent = datetime.now(UTC)
        theirs = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        back = datetime.now(UTC)
    measured = theirs - (sent + (back - sent) / 2)
    return measured if abs(measured) > max(TOLERANCE, (back - sent) / 2) else timedelta(0)


def sync(engine: Engine) -> timedelta:
    global _offset
    measured = measure(engine)
    with _lock:
        if abs((measured - _offset).total_seconds()) > 1:
            log.warning("this host's clock is %+.1f s off the database's: the gateway keeps the database's time",
                        -measured.total_seconds())
        _offset = measured
    return measured


def let_go(engine: Engine) -> None:
    """The engine is closed (its gateway shut down, its database perhaps gone): the keeper stops reading it."""
    global _engine
    with _reading:
        if _engine is engine:
            _engine = None


def keep_in_step(engine: Engine) -> None:
    """Measure now, then every RESYNC_SECONDS on a daemon thread (one per process; PostgreSQL only)."""
    global _keeper, _engine
    if engine.dialect.name != "postgresql":
        return
    with _reading:
        _engine = engine
    try:
        sync(engine)
    except Exception as exc:  # noqa: BLE001 - the database is not up yet: the thread measures when it is
        log.warning("could not read the database's clock at start: %s", exc)
    with _lock:
        if _keeper is not None and _keeper.is_alive():
            return

        def again() -> None:
            while True:
                time.sleep(RESYNC_SECONDS)
                # Under the lock, so that a gateway closing (let_go, then dispose) waits for the reading to end
                # instead of the reading opening a connection on its disposed engine.
                with _reading:
                    try:
                        if _engine is not None:
                            sync(_engine)
                    except Exception as exc:  # noqa: BLE001 - the database is down: keep the last offset
                        log.warning("could not read the database's clock: %s", exc)

        _keeper = threading.Thread(target=again, name="server-clock", daemon=True)
        _keeper.start()
