"""The gateway's time for the ops views (console, metrics, /ops): the database's clock (store/server_clock.py),
which every host shares, so that ages and deadlines shown by one API host agree with what another host wrote."""

from __future__ import annotations

from datetime import datetime

from gateway.store import server_clock


def now() -> datetime:
    return server_clock.now()
