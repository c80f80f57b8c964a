"""Citizen messages sent in batches (both stacks): a batch's send intent and its outcomes in a few transactions,
not one per message, and a worker killed mid-batch telling no citizen twice and losing nothing."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.adapters.base import RetryableError
from gateway.adapters.sms_email.viettel import numeric_request_id
from gateway.store.tables import notification_attempts, notifications
from mocks.provincial_portal import sample_dossier

from .conftest import wait_for
from .test_notifications import send, settled
from .test_statements import counted


@pytest.fixture
def own(stack, engine) -> Iterator[Any]:  # noqa: ANN001
    """A gateway in this process on a database of the test's own (no worker takes its jobs), sending through the
    stack's mocks."""
    from gateway.bootstrap import bootstrap

    settings = stack.settings.model_copy(update={
        "database": stack.settings.database.model_copy(
            update={"url": engine.url.render_as_string(hide_password=False)}),
        "broker": stack.settings.broker.model_copy(update={"url": "memory://"})})
    gateway = bootstrap(settings)
    yield gateway
    gateway.close()


def store(gateway: Any, phones: list[str], *, email: bool) -> None:
    """A `received` message per applicant (SMS, and email when asked), stored as a filing stores them."""
    now = datetime.now(UTC)
    with gateway.engine.begin() as conn:
        for phone in phones:
            code = f"000.00.01.H31-240725-{uuid.uuid4().int % 10000:04d}"
            data = sample_dossier(code)
            data["applicant"] |= {"phone": phone, "email": f"{phone}@example.vn" if email else None}
            outgoing = gateway.notifier.for_applicant({"code": code, "data": data, "status": 1}, "received",
                                                      cause=f"{code}:{uuid.uuid4().hex}", origin="filing", now=now)
            gateway.notifier.store(conn, outgoing, max_attempts=3, now=now)


def phones(n: int) -> list[str]:
    return [f"8491{uuid.uuid4().int % 10**7:07d}" for _ in range(n)]


def all_recorded(gateway: Any) -> list[tuple[str, int, Any, int]]:
    with gateway.engine.connect() as conn:
        tried = func.count(notification_attempts.c.id)
        return [tuple(r) for r in conn.execute(
            select(notifications.c.state, notifications.c.attempts, notifications.c.sending_since, tried)
            .join(notification_attempts, notification_attempts.c.notification_id == notifications.c.id)
            .group_by(notifications.c.id).order_by(notifications.c.id))]


def test_a_batch_of_sms_records_its_outcomes_in_one_transaction(own) -> None:  # noqa: ANN001
    """Eight SMS in one batch: the claim, the send intent, the outcomes, the jobs' record: four commits, not one per
    message (before: 1 + 8 + 1)."""
    store(own, phones(8), email=False)
    with counted(own.engine) as drain:
        outcomes = own.runner.drain("notifications").outcomes
    assert [o.state for o in outcomes] == ["done"] * 8
    assert drain.commits == 4
    assert all_recorded(own) == [("sent", 1, None, 1)] * 8  # each recorded once, its intent cleared


def test_an_email_is_recorded_as_soon_as_it_is_sent(own) -> None:  # noqa: ANN001
    """SMTP does not recognise a message sent again, so an email's outcome (with the SMS outcomes waiting before it)
    is recorded at once: a batch of three SMS and three emails commits once more per email."""
    store(own, phones(3), email=True)  # SMS, email, SMS, email, SMS, email
    with counted(own.engine) as drain:
        outcomes = own.runner.drain("notifications").outcomes
    assert [o.state for o in outcomes] == ["done"] * 6
    assert drain.commits == 3 + 3
    assert all_recorded(own) == [("sent", 1, None, 1)] * 6


def test_an_sms_that_went_elsewhere_is_recorded_at_once(own, monkeypatch) -> None:  # noqa: ANN001
    """Asked again after a crash, the first provider would send an SMS another provider took: such an outcome is
    not kept waiting (the first of three SMS fails over to VNPT: its own commit, then the two others together)."""
    viettel = own.notification_jobs.sms.providers[0]
    failures = iter([RetryableError("viettel: HTTP 500")])  # this gateway's own: no other test's worker takes it

    def once_down(sms: Any) -> str:
        for exc in failures:
            raise exc
        return type(viettel).send(viettel, sms)

    monkeypatch.setattr(viettel, "send", once_down)
    store(own, phones(3), email=False)
    with counted(own.engine) as drain:
        outcomes = own.runner.drain("notifications").outcomes
    assert [o.state for o in outcomes] == ["done"] * 3
    assert drain.commits == 4 + 1
    with own.engine.connect() as conn:
        providers = conn.execute(select(notifications.c.provider).order_by(notifications.c.id)).scalars().all()
    assert providers == ["vnpt", "viettel", "viettel"]


def test_a_worker_killed_mid_batch_tells_each_citizen_once(gw) -> None:  # noqa: ANN001
    """Two emails then six SMS in one batch; the worker is SIGKILLed while the provider holds the answer to the third
    SMS (or a later one on a slow machine: the batch's end is three seconds further). The SMS before it were sent
    but their outcomes wait for the batch's end: in doubt, they go again to the first provider, which recognises
    them ("duplicate"). The emails were recorded as they went: not sent again. Nothing is lost, and no citizen
    gets a message twice."""
    gw.stop_workers()
    run = uuid.uuid4().hex[:8]
    params = {"dossier": {"code": f"H56-{run}", "applicant_name": "Lê Văn An",
                          "procedure_name": "Cấp phiếu lý lịch tư pháp"}}
    addresses = [f"an{i}-{run}@example.vn" for i in range(2)]
    numbers = [f"0912{uuid.uuid4().int % 10**6:06d}" for _ in range(6)]
    emails = [send(gw, channel="email", to=a, template="withdrawn", params=params).get_json()["id"] for a in addresses]
    sms = [send(gw, channel="sms", to=n, template="withdrawn", params=params).get_json()["id"] for n in numbers]
    receivers = {"84" + n[1:] for n in numbers}

    def accepted() -> list[dict[str, Any]]:
        return [m for m in gw.viettel.messages() if m["receiver"] in receivers]

    gw.viettel.faults("delay", 100, seconds=1.0)  # each SMS taken at once, its answer held 1 s (the timeout: 1.5 s)
    gw.start_worker()
    wait_for(lambda: len(accepted()) >= 3, 30, what="three SMS at the provider")
    gw.stop_workers(signal.SIGKILL)
    before_kill = len(accepted())
    gw.viettel.clear_faults()
    gw.start_worker()
    views = [settled(gw, ref) for ref in emails + sms]  # nothing lost (a lease of 5 s hands the jobs on)
    for address in addresses:  # recorded as sent before the kill: never sent again
        assert len(gw.mail.messages(to=address)) == 1
    assert sorted(m["request_id"] for m in accepted()) == sorted(numeric_request_id(r) for r in sms)  # once each
    outcomes = [[(a["provider"], a["outcome"]) for a in v["attempt_log"]] for v in views[2:]]
    # The SMS at the provider when the worker died were in doubt; asked again, the provider said it had them.
    assert outcomes.count([("viettel", "duplicate")]) == before_kill
    assert outcomes.count([("viettel", "sent")]) == 6 - before_kill


def test_a_batch_of_one_commits_as_before(own) -> None:  # noqa: ANN001
    """No outcome can wait behind a lone message: no intent, three commits (claim, outcome, jobs) as before."""
    store(own, phones(1), email=False)
    with counted(own.engine) as drain:
        outcomes = own.runner.drain("notifications").outcomes
    assert [o.state for o in outcomes] == ["done"] and drain.commits == 3
    assert all_recorded(own) == [("sent", 1, None, 1)]
