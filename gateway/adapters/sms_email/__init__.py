"""Citizen notifications: brandname SMS (Viettel SOAP, VNPT JSON) with failover, and SMTP email."""

from __future__ import annotations

from gateway.config import NotificationSettings

from .base import SmsProvider
from .failover import SmsFailover
from .smtp_email import SmtpEmail
from .viettel import ViettelSms
from .vnpt import VnptSms

QUEUE = "notifications"
SEND = "notification.send"


def build_sms(settings: NotificationSettings) -> SmsFailover:
    known: dict[str, SmsProvider] = {"viettel": ViettelSms(settings.sms.viettel), "vnpt": VnptSms(settings.sms.vnpt)}
    return SmsFailover([known[name] for name in settings.sms.providers], settings.sms.skip_after_failures,
                       settings.sms.skip_seconds)


def build_email(settings: NotificationSettings) -> SmtpEmail:
    return SmtpEmail(settings.email)
