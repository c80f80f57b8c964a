"""SMS length in segments, and failover between providers (fake providers, a fake clock)."""

from __future__ import annotations

import pytest

from gateway.adapters.base import RetryableError
from gateway.adapters.sms_email.base import RejectedError, Sms, SmsProvider, Verdict
from gateway.adapters.sms_email.failover import AllFailed, SmsFailover
from gateway.adapters.sms_email.viettel import verdict_of
from gateway.adapters.sms_email.vnpt import ERROR_VERDICTS
from gateway.domain.sms_text import Encoding, measure, sms_text

VI = "Hồ sơ 000.00.17.H31-240725-0001 đã được tiếp nhận"


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("a" * 160, Encoding.GSM7, 1), ("a" * 161, Encoding.GSM7, 2), ("a" * 306, Encoding.GSM7, 2),
    ("a" * 307, Encoding.GSM7, 3), ("€" * 80, Encoding.GSM7, 1), ("€" * 81, Encoding.GSM7, 2),  # € takes two
    ("ệ" * 70, Encoding.UCS2, 1), ("ệ" * 71, Encoding.UCS2, 2), ("ệ" * 134, Encoding.UCS2, 2),
    ("ệ" * 135, Encoding.UCS2, 3),
])
def test_segments_gsm7_160_153_and_ucs2_70_67(text, encoding, segments):
    length = measure(text)
    assert (length.encoding, length.segments) == (encoding, segments)


def test_without_diacritics_vietnamese_becomes_gsm7():
    plain = sms_text(VI + " – “Đ”", diacritics=False)
    assert plain == 'Ho so 000.00.17.H31-240725-0001 da duoc tiep nhan - "D"'
    assert measure(plain).encoding is Encoding.GSM7
    assert sms_text(VI, diacritics=True) == VI and measure(VI).encoding is Encoding.UCS2


def test_answer_code_tables():
    assert verdict_of(1, "Insert MT_QUEUE: OK") is Verdict.SENT
    assert verdict_of(0, "Check ReceiverID: FORMAT_ERROR") is Verdict.REJECTED
    assert verdict_of(0, "Authenticate: WRONG_INFORMATION_AUTHENTICATE") is Verdict.REFUSING
    assert verdict_of(0, "Check information error") is Verdict.RETRYABLE
    assert verdict_of(0, "something new") is Verdict.RETRYABLE
    assert ERROR_VERDICTS["2"] is Verdict.REJECTED and ERROR_VERDICTS["7"] is Verdict.DUPLICATE


class Fake(SmsProvider):
    def __init__(self, name: str, *answers: Exception | None) -> None:
        self.name, self.answers, self.calls = name, list(answers), 0

    def send(self, sms: Sms) -> str:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return f"{self.name}-{sms.request_id}"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


SMS = Sms("TB1", "84912345678", "Ho so da duoc tiep nhan", unicode=False)


def test_next_provider_takes_over_and_a_failing_one_is_skipped_for_a_while():
    down, up, clock = Fake("viettel", *[RetryableError("HTTP 500")] * 10), Fake("vnpt"), Clock()
    router = SmsFailover([down, up], skip_after_failures=2, skip_seconds=60, clock=clock)
    for _ in range(2):
        sent = router.send(SMS)
        assert sent.provider == "vnpt" and [a.outcome for a in sent.attempts] == ["retryable", "sent"]
    sent = router.send(SMS)  # viettel failed twice in a row: skipped
    assert [(a.provider, a.outcome) for a in sent.attempts] == [("viettel", "skipped"), ("vnpt", "sent")]
    assert down.calls == 2 and "viettel" in router.skipped()
    clock.now += 61  # the pause is over: viettel is tried first again
    router.send(SMS)
    assert down.calls == 3


def test_a_rejected_message_goes_nowhere_else():
    first, second = Fake("viettel", RejectedError("ReceiverID is invalid")), Fake("vnpt")
    with pytest.raises(AllFailed) as caught:
        SmsFailover([first, second], 3, 60).send(SMS)
    assert caught.value.retryable is False and second.calls == 0


def test_all_down_is_retryable_and_skipped_providers_are_still_tried_last():
    a, b, clock = Fake("viettel", *[RetryableError("down")] * 5), Fake("vnpt", *[RetryableError("down")] * 5), Clock()
    router = SmsFailover([a, b], skip_after_failures=1, skip_seconds=60, clock=clock)
    with pytest.raises(AllFailed) as caught:
        router.send(SMS)
    assert caught.value.retryable is True
    b.answers.clear()  # vnpt is back, though both are in their pause
    sent = router.send(SMS)
    assert sent.provider == "vnpt" and a.calls == 2
