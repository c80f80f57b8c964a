"""A partner's connection gives up what the partner has not acknowledged within the partner's timeout
(TCP_USER_TIMEOUT): a request written into a cut link is dropped by the kernel, never delivered when the link comes
back, after another worker has taken the job over (gateway/adapters/base.py). The cut itself is the multi-host
test's (tests/test_hosts.py); here, that every partner's sessions carry the setting, on a real connection."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from gateway.adapters.national_portal.client import NationalPortalClient
from gateway.adapters.national_portal.mapping import event_to_progress
from gateway.adapters.postal.vnpost import VNPostClient
from gateway.config import load_settings

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")


def empty_200_server(heads: list[str]) -> socket.socket:
    """A server that answers every request on a connection with an empty 200, noting each request line in `heads`
    (it may be an HTTP proxy's: the line then names the whole address)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    if data[:4] in (b"GET ", b"POST"):  # a request's head; a body may come in a read of its own
                        heads.append(data.split(b"\r\n", 1)[0].decode())
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.fixture
def answering() -> str:
    server = empty_200_server([])
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()


def user_timeout_ms(http, url: str) -> int:  # noqa: ANN001
    answer = http.get(url, stream=True, timeout=5)
    try:
        return answer.raw._connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
    finally:
        answer.close()


def test_partner_connections_are_abandoned_after_the_partner_timeout(answering, monkeypatch):
    monkeypatch.setenv("GATEWAY_NATIONAL_PORTAL__TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("GATEWAY_POSTAL__TIMEOUT_SECONDS", "4")
    settings = load_settings()
    portal = NationalPortalClient(settings.national_portal)
    post = VNPostClient(settings.postal)
    assert user_timeout_ms(portal._http_sessions.session(), answering) == 2500
    assert user_timeout_ms(post.http.session(), answering) == 4000
    # Through an HTTP proxy (the answering server plays one), on the connection to the proxy.
    proxied = post.http.session()
    proxied.proxies = {"http": answering}
    assert user_timeout_ms(proxied, "http://vnpost.invalid/") == 4000
    # Without a partner's timeout (the webhooks' client: a late delivery carries its message id, which receivers
    # deduplicate) the kernel's default stays: 0.
    from gateway.adapters.base import PerThreadHttp
    assert user_timeout_ms(PerThreadHttp().session(), answering) == 0


@pytest.mark.parametrize(("timeout", "called"), [(3.0, False), (2.0, True)])
def test_a_portal_call_that_could_outlast_its_jobs_lease_is_not_made(engine, timeout, called):
    """A call may take its timeout to connect and another before what it wrote is abandoned: with less of the
    job's lease left than that, the national portal is not called (another worker may take the job over meanwhile,
    and the record this call carries would land after the ones that worker sends). The jobs go back at once, keep
    their attempts, and the portal is not taken for down; with time enough, the call is made."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import select

    from gateway.adapters.base import one_by_one
    from gateway.adapters.national_portal.client import NationalPortalClient
    from gateway.config import JobSettings, NationalPortalSettings
    from gateway.jobs.runner import JobRunner
    from gateway.store import outbox
    from gateway.store.tables import jobs

    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def refuse() -> None:  # a portal that hangs up: any call made fails, retryably
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(1)
            conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    portal = NationalPortalClient(NationalPortalSettings(
        base_url=f"http://127.0.0.1:{server.getsockname()[1]}/national-portal", timeout_seconds=timeout))
    queue = f"np-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        for n in range(3):
            outbox.enqueue(conn, outbox.NewJob(queue, "lookup", f"K{n}", {"code": f"K{n}"}), now=datetime.now(UTC),
                           max_attempts=3)
    runner = JobRunner(engine, {"lookup": lambda payloads: one_by_one(lambda p: portal.lookup(p["code"]), payloads)},
                       JobSettings(batch_size=3, lease_seconds=5, outage_after_keys=3))
    outcomes = runner.run_batch(queue)
    server.close()
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.state, jobs.c.attempts, jobs.c.last_error)
                            .where(jobs.c.queue == queue)).all()
    assert [o.state for o in outcomes] == ["retry"] * 3 and all(state == "pending" for state, _, _ in rows)
    if called:
        assert len(connections) == 3 and not any("lease ends in" in error for _, _, error in rows), rows
        assert runner.outages.down(queue)  # three dossiers failed in a row: the portal is taken for down
    else:
        assert not connections, "a call was made with too little of the lease left"
        assert all(attempts == 0 and "lease ends in" in error for _, attempts, error in rows), rows
        assert not runner.outages.down(queue)


@pytest.fixture
def proxy() -> tuple[str, list[str]]:
    """An HTTP proxy that answers every request itself, and the request lines it was sent."""
    heads: list[str] = []
    server = empty_200_server(heads)
    yield f"http://127.0.0.1:{server.getsockname()[1]}", heads
    server.close()


def test_partner_calls_take_the_environments_proxy_read_once_per_partner(proxy, monkeypatch):
    """The environment's proxy settings are read once per partner, not on every call (adapters/base.py), and still
    say what they said: HTTP_PROXY carries the calls, NO_PROXY keeps a host out of it, a call's own proxy wins."""
    from gateway.adapters.base import PerThreadHttp, RetryableError, send

    address, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    http = PerThreadHttp(abandon_after=5)
    for _ in range(2):  # the second call from what the first read
        assert http.post("http://partner.invalid/ws", b"<x/>", {"Content-Type": "text/xml"}, timeout=5).ok
        assert send(http.session(), "GET", "http://partner.invalid/token", "token", timeout=5).ok
        assert send(http, "POST", "http://partner.invalid/api", "api", json={"a": 1}, timeout=5).ok
    assert lines == ["POST http://partner.invalid/ws HTTP/1.1", "GET http://partner.invalid/token HTTP/1.1",
                     "POST http://partner.invalid/api HTTP/1.1"] * 2
    for call in (lambda: send(http.session(), "GET", "http://direct.invalid/", "direct", timeout=5),
                 lambda: send(http, "GET", "http://direct.invalid/", "direct", timeout=5)):
        with pytest.raises(RetryableError):  # not through the proxy: the name does not resolve
            call()
    assert len(lines) == 6
    monkeypatch.delenv("HTTP_PROXY")
    assert send(http.session(), "GET", "http://partner.invalid/again", "own proxy", timeout=5,
                proxies={"http": address}).ok
    assert lines[-1] == "GET http://partner.invalid/again HTTP/1.1"


STEP = {"service": "CapNhatTienDoHoSoMC", "data": [event_to_progress("000.00.01.H01-261207-0001", {
    "status": 2, "at": "2026-12-07T10:00:00+07:00", "officer": "Nguyễn Văn A", "note": "Đã tiếp nhận hồ sơ"})]}


@pytest.mark.parametrize(("method", "headers", "body"), [
    ("POST", {}, STEP),
    ("POST", {"Authorization": "Bearer t0k3n", "Accept": "application/json"}, {"amount": 33000, "note": "Lệ phí"}),
    ("GET", {"Authorization": "Bearer t0k3n"}, None),
])
def test_the_short_way_sends_what_a_session_sends(method, headers, body):
    """PerThreadHttp.request (the portal's steps, the payment platform's and VNPost's calls) hands the transport the
    request Session.request would: method, address, every header, the body's bytes."""
    import responses

    from gateway.adapters.base import PerThreadHttp

    url = "http://partner.invalid/api/orders?x=1"
    with responses.RequestsMock() as mock:
        mock.add(method, url, json={"ok": True})
        mock.add(method, url, json={"ok": True})
        with requests.Session() as session:
            assert session.request(method, url, headers=headers, json=body, timeout=5).json() == {"ok": True}
        assert PerThreadHttp(abandon_after=5).request(method, url, headers=headers, json=body,
                                                      timeout=5).json() == {"ok": True}
        by_session, short = (call.request for call in mock.calls)
    assert (short.method, short.url, short.body) == (by_session.method, by_session.url, by_session.body)
    assert dict(short.headers) == dict(by_session.headers)
