"""Rendering the citizen messages from their Vietnamese templates (Jinja2 files, one per message and channel).

`<name>.sms.j2` is the SMS text; `<name>.email.j2` the email body, which sets `subject`. Missing values are
an error, never a blank in a message sent to a citizen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2

from gateway.domain.dossier import VN_TZ
from gateway.domain.notifications import Channel

MAX_SUBJECT = 500  # notifications.subject
BUILT_IN = Path(__file__).resolve().parents[2] / "templates" / "notifications"  # gateway/templates/


class TemplateError(ValueError):
    """An unknown template, or values it needs that were not given."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


def _moment(value: Any) -> datetime | date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(VN_TZ) if isinstance(value, datetime) else value


def vn_date(value: Any) -> str:
    return _moment(value).strftime("%d/%m/%Y")


def vn_datetime(value: Any) -> str:
    return _moment(value).strftime("%H:%M ngày %d/%m/%Y")


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"  # 33.000 đồng


class MessageTemplates:
    def __init__(self, directory: str | Path | None = None, **defaults: Any) -> None:
        self.directory = Path(directory) if directory else BUILT_IN
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.directory), undefined=jinja2.StrictUndefined,
                                      autoescape=False, keep_trailing_newline=False)
        self.env.filters.update(vn_date=vn_date, vn_datetime=vn_datetime, vnd=vnd)
        self.defaults = defaults

    def names(self) -> set[str]:
        return {name.split(".")[0] for name in self.env.list_templates(extensions=["j2"]) if not name.startswith("_")}

    def render(self, name: str, channel: Channel, context: dict[str, Any]) -> Rendered:
        try:
            template = self.env.get_template(f"{name}.{channel}.j2")
        except jinja2.TemplateNotFound:
            raise TemplateError(f"no {channel} template {name!r}; known: {', '.join(sorted(self.names()))}") from None
        except jinja2.TemplateSyntaxError as exc:  # a province's own template with a typo
            raise TemplateError(f"template {name!r} is broken: line {exc.lineno}: {exc.message}") from None
        try:
            module = template.make_module({**self.defaults, **context})
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name!r} needs a value it was not given: {exc.message}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # e.g. a number where a date is formatted
            raise TemplateError(f"template {name!r}: a value has the wrong type: {exc}") from None
        body = str(module).strip()
        subject = getattr(module, "subject", None)
        subject = " ".join(str(subject).split()) if subject else None
        if channel is Channel.EMAIL and not subject:
            raise TemplateError(f"email template {name!r} sets no subject")
        if subject and len(subject) > MAX_SUBJECT:
            raise TemplateError(f"template {name!r}: the subject is over {MAX_SUBJECT} characters")
        return Rendered(subject, body)
