"""RFC 3161 time stamps over HTTP, with pyHanko's requests-based client.

Any failure (unreachable, a 5xx, a reply that is no TimeStampResp, a refusal, a nonce that does not match)
is a RetryableError: the package waits for the TSA rather than being sealed without a time.
"""

from __future__ import annotations

import asyncio

from asn1crypto import cms
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

from gateway.adapters.base import RetryableError


class TsaClient:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def stamp(self, digest: bytes, algorithm: str = "sha256") -> bytes:
        """The DER token (a CMS ContentInfo) over `digest`."""
        stamper = RequestsHTTPTimeStamper(self.url, timeout=self.timeout)
        try:
            token: cms.ContentInfo = asyncio.run(stamper.async_timestamp(digest, algorithm))
            return token.dump()
        except Exception as exc:  # noqa: BLE001 - IOError, TimestampRequestError, ValueError from a garbage reply
            raise RetryableError(f"time-stamping authority {self.url}: {type(exc).__name__}: {exc}"[:500]) from None
