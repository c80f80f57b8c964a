"""Logging for every process: one line per record, JSON or text, each carrying the request id, and
nothing a log reader must not see: configured secrets, bearer tokens and citizen ID numbers
(12-digit CCCD, 9-digit CMND) are masked in the message, its arguments and any traceback."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import IO

from pythonjsonlogger.json import JsonFormatter

from .request_context import current

MASK = "***"
ID_NUMBER = re.compile(r"(?<!\d)(?:\d{12}|\d{9})(?!\d)")
BEARER = re.compile(r"(?i)(bearer\s+)\S+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s]: %(message)s"


class Redactor(logging.Filter):
    """Masks what must not be logged; also stamps the request id on the record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is masked whole.
        words = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.secrets = re.compile("|".join(re.escape(w) for w in words)) if words else None

    def clean(self, text: str) -> str:
        if self.secrets is not None:
            text = self.secrets.sub(MASK, text)
        return ID_NUMBER.sub(MASK, BEARER.sub(r"\1" + MASK, text))

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current() or "-"
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call (args not matching the format) must not fail the caller
            message = f"{record.msg} {record.args!r}"
        record.msg = self.clean(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
            record.exc_info = None  # the cleaned text is what gets printed
        return True


def configure(level: str = "info", fmt: str = "text", secrets: Iterable[str] = (), stream: IO[str] | None = None,
              ) -> logging.Handler:
    """Make the root logger write one line per record to `stream` (stderr), masked; the handler is returned."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(process)d %(name)s %(request_id)s "
                                           "%(message)s", rename_fields={"levelname": "level", "name": "logger",
                                                                          "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    return handler
