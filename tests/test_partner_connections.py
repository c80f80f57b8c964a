"""A partner's connection gives up what the partner has not acknowledged within the partner's timeout
(TCP_USER_TIMEOUT): a request written into a cut link is dropped by the kernel, never delivered when the link comes
back, after another worker has taken the job over (gateway/adapters/base.py). The cut itself is the multi-host
test's (tests/test_hosts.py); here, that every partner's sessions carry the setting, on a real connection."""

from __future__ import annotations

import socket
import threading

import pytest

from gateway.adapters.national_portal.client import NationalPortalClient
from gateway.adapters.postal.vnpost import VNPostClient
from gateway.config import load_settings

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")


@pytest.fixture
def answering() -> str:
    """A server that answers every request on a connection with an empty 200."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while conn.recv(65536):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
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
