"""Time as the Vietnamese partners write it: UTC+07:00 all year (Vietnam keeps no daylight saving time)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


def vn_now() -> datetime:
    """Now in Vietnam; each mock writes it in its partner's format."""
    return datetime.now(VN_TZ)
