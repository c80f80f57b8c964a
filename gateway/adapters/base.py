"""The adapter contract: a delivery either returns, or raises one of these error kinds.

The worker reads only the kind: retryable errors are tried again with backoff, throttled ones after
the partner's Retry-After, permanent ones go straight to the dead letters, and a duplicate means the
partner already has the effect, which counts as success.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPConnection


class AdapterError(Exception):
    retryable = True


class RetryableError(AdapterError):
    """Timeouts, connection errors, 5xx, 408, transient business codes."""


class LeaseEnding(RetryableError):
    """A call not started: the job's lease could end before the partner has answered, and another worker may
    then take the job over; this call landing after that worker's could undo them at the partner. The job is
    tried again at once and the refusal costs it no attempt (jobs/runner.py)."""


class ThrottledError(RetryableError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(AdapterError):
    """Other 4xx and business rejections: trying again would get the same answer."""

    retryable = False


class UnreadableAnswer(PermanentError):
    """The partner answered, but with something we cannot trust: not JSON, too large, about another record, of a
    shape we cannot read. Asking again would get the same; whoever asked records it and carries on."""


class DuplicateError(AdapterError):
    """The partner already holds this effect."""

    retryable = False


# A job handler takes the job's payload and delivers it.
Handler = Callable[[dict[str, Any]], None]
# A batch handler delivers many payloads at once and answers per payload: None (delivered) or the error.
BatchHandler = Callable[[list[dict[str, Any]]], list["AdapterError | None"]]


def one_by_one(handler: Handler, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
    results: list[AdapterError | None] = []
    for payload in payloads:
        try:
            handler(payload)
            results.append(None)
        except DuplicateError:
            results.append(None)
        except AdapterError as exc:
            results.append(exc)
    return results


def batch_or_each(send_all: Callable[[list[dict[str, Any]]], None], handler: Handler,
                  payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
    """Send a batch in one call; if the partner rejects the batch as a whole for a business reason,
    send the payloads one by one so that only the bad ones fail. A retryable failure fails them all."""
    if len(payloads) == 1:
        return one_by_one(handler, payloads)
    try:
        send_all(payloads)
        return [None] * len(payloads)
    except RetryableError as exc:
        return [exc] * len(payloads)
    except AdapterError:
        return one_by_one(handler, payloads)


class _AbandoningAdapter(HTTPAdapter):
    """Connections whose kernel gives up on data the partner has not acknowledged after `seconds`
    (TCP_USER_TIMEOUT). A request written while the link is down is otherwise kept and sent again by the kernel
    when the link comes back, however long after the call has timed out and the socket has been closed (up to
    about 15 minutes, net.ipv4.tcp_retries2): the partner then applies a request that another worker has
    since overtaken (an older dossier record over a newer one, seen in the multi-host partition test)."""

    def __init__(self, seconds: float) -> None:
        self._options = [*HTTPConnection.default_socket_options,
                         (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(1, int(seconds * 1000)))]
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = self._options
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through an HTTP(S) proxy (HTTPS_PROXY), the connection is the proxy's: the same option on it.
        if not proxy.lower().startswith("socks"):
            proxy_kwargs.setdefault("socket_options", self._options)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


class _EnvironmentReadOnce(requests.Session):
    """A Session that reads the proxy and CA bundle variables of the environment once per partner origin, not on
    every call: requests walks the whole of os.environ for them at each request (a fifth of a call's CPU, measured
    in docs/performance.md), and a partner's answer cannot change while the process runs. What a call or the
    session itself sets still wins, as in requests."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if not self.trust_env or (proxies and "no_proxy" in proxies):  # a call's own no_proxy: requests' way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = urlsplit(url)[:2]
        if (read := self._environment.get(origin)) is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            read = self._environment[origin] = (get_environ_proxies(url), bundle)
        env_proxies, env_bundle = read
        proxies = {**env_proxies, **(proxies or {})}
        if (verify is True or verify is None) and env_bundle:
            verify = env_bundle
        return {"proxies": merge_setting(proxies, self.proxies), "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}


class PerThreadHttp:
    """One requests.Session per thread: a Session is not safe to share, and workers run several threads.
    With `abandon_after` (the partner's timeout), nothing sent can reach the partner later than that after it
    was written: a call that starts with two timeouts of its job's lease left (a connect, then the abandon;
    before_calling) is dead before another worker may take the job over (docs/operations.md, "More than one
    host")."""

    def __init__(self, abandon_after: float | None = None) -> None:
        self._local = threading.local()
        self.abandon_after = abandon_after

    def session(self) -> requests.Session:
        if not hasattr(self._local, "http"):
            http = _EnvironmentReadOnce()
            if self.abandon_after is not None and hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
                adapter = _AbandoningAdapter(self.abandon_after)
                http.mount("http://", adapter)
                http.mount("https://", adapter)
            self._local.http = http
        return self._local.http

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> requests.Response:
        """A plain POST of these headers only, straight to the session's transport: no cookies, auth, hooks or
        redirects, which a partner's API call never needs, for about a third less CPU than Session.post
        (docs/performance.md). The proxies of the session and of the environment apply as they would there."""
        request = requests.PreparedRequest()
        request.prepare(method="POST", url=url, headers=headers, data=body)
        return self._send(self.session(), request, timeout)

    def request(self, method: str, url: str, *, timeout: float, headers: Mapping[str, str] | None = None,
                json: Any = None) -> requests.Response:
        """Session.request's call for a partner's API (a JSON body or none), the same request on the wire (the
        session's default headers under the call's), by post()'s short way: no cookies, auth, hooks or redirects.
        It stands in for a Session wherever `send` is given one."""
        http = self.session()
        request = requests.PreparedRequest()
        request.prepare(method=method.upper(), url=url, json=json,
                        headers=merge_setting(headers, http.headers, dict_class=CaseInsensitiveDict))
        return self._send(http, request, timeout)

    @staticmethod
    def _send(http: requests.Session, request: requests.PreparedRequest, timeout: float) -> requests.Response:
        url = request.url or ""
        return http.get_adapter(url).send(request, timeout=timeout,
                                          **http.merge_environment_settings(url, {}, None, None, None))


RETRYABLE_HTTP = frozenset({408, 425, 500, 502, 503, 504})


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def check_http(response: requests.Response, what: str) -> None:
    """Turn an HTTP failure into the right error kind; return quietly on 2xx."""
    status = response.status_code
    if status < 300:
        return
    message = f"{what}: HTTP {status} {response.text[:300]}"
    if status == 429:
        raise ThrottledError(message, _retry_after(response))
    if status in RETRYABLE_HTTP or status >= 500:
        raise RetryableError(message)
    raise PermanentError(message)


def read_bounded(response: requests.Response, limit: int, what: str) -> None:
    """Read a streamed answer's body, at most `limit` bytes once decoded: a larger answer (a broken or hostile
    partner) is refused before it fills the memory, a larger failure cut. The body is then the response's, as if
    read in full."""
    try:
        body = response.raw.read(limit + 1, decode_content=True)
    except Exception as exc:  # noqa: BLE001 - urllib3's protocol and decoding errors: the answer broke off
        raise RetryableError(f"{what}: the answer broke off: {type(exc).__name__}: {exc}") from exc
    finally:
        response.close()
    if len(body) > limit:
        if response.status_code < 300:
            raise UnreadableAnswer(f"{what}: answer larger than {limit} bytes")
        body = body[:limit]  # a failure's status says what it is; its first bytes are enough to show
    response._content = body  # what requests itself sets once it has read the body
    response._content_consumed = True


def send(session: requests.Session | PerThreadHttp, method: str, url: str, what: str, *, timeout: float,
         **kwargs: Any) -> requests.Response:
    """One HTTP call, by a Session or by PerThreadHttp's short way; network trouble becomes RetryableError, an HTTP
    failure its own kind."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:  # e.g. a broken chunked answer from a dropped connection
        raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
    check_http(response, what)
    return response


# The monotonic time by which the partner calls of the batch being run must be over: its lease's end
# (jobs/runner.py sets it around a batch's delivery). Unset: no lease to keep (a call outside a job).
_calls_until: ContextVar[float | None] = ContextVar("calls_until", default=None)


@contextmanager
def calls_until(deadline: float) -> Iterator[None]:
    """Partner calls made inside must be able to end before `deadline` (time.monotonic())."""
    token = _calls_until.set(deadline)
    try:
        yield
    finally:
        _calls_until.reset(token)


def before_calling(seconds: float, what: str) -> None:
    """Refuse (LeaseEnding) to start a call that could go on for `seconds` past the lease of the job it serves."""
    deadline = _calls_until.get()
    if deadline is not None and time.monotonic() + seconds > deadline:
        raise LeaseEnding(f"{what}: not called: the job's lease ends in {max(0.0, deadline - time.monotonic()):.1f} s, "
                          f"and the call may take {seconds:g} s")
