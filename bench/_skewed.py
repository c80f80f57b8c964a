"""Run a Python module with the host's wall clock off by a number of seconds, as a host whose clock is wrong.

    python bench/_skewed.py +90 -m gateway worker ...
    python bench/_skewed.py +90 -c "python code"

faketime (libfaketime 0.9.10, Debian 12) cannot do it for the gateway: under it Python's threads hang in
Event.wait(), or, with FAKETIME_DONT_FAKE_MONOTONIC=1, time.sleep() fails with EINVAL. A time namespace
offsets only the monotonic and boot clocks, never the wall clock. So the skew is made in the process: the wall
clock Python reads (time.time, time.time_ns, datetime.now/utcnow/today) is moved, the monotonic clock is not,
which is what a wrong host clock looks like to a program. Installed before anything imports `datetime`'s class.
"""

from __future__ import annotations

import datetime as _dt
import runpy
import sys
import time as _time


def skew(seconds: float) -> None:
    real_time, real_time_ns = _time.time, _time.time_ns
    by = _dt.timedelta(seconds=seconds)
    real = _dt.datetime
    _time.time = lambda: real_time() + seconds
    _time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)

    class Real(type):
        # What the C code makes (psycopg's results, arithmetic) are datetime's own objects: they must still be
        # instances of the class the modules imported, or every isinstance(x, datetime) check would fail.
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real)

    class SkewedDatetime(real, metaclass=Real):
        __slots__ = ()  # the size of datetime's own objects: C extensions check it
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
            return real.now(tz) + by

        @classmethod
        def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
            return real.utcnow() + by

        @classmethod
        def today(cls) -> _dt.datetime:  # type: ignore[override]
            return real.today() + by

    _dt.datetime = SkewedDatetime  # type: ignore[misc]


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] not in ("-m", "-c"):
        sys.exit("usage: _skewed.py SECONDS (-m MODULE | -c CODE) [ARGS...]")
    skew(float(sys.argv[1]))
    if sys.argv[2] == "-c":
        code = sys.argv[3]
        sys.argv = ["-c", *sys.argv[4:]]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - python -c, skewed
        return
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
