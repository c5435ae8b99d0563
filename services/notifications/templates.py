"""Message templates: Jinja2 in a sandbox, one per key, channel and language, Indonesian by
default. A template is rendered with sample data when it is saved, so one that does not
render is refused then, not when a message is due."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from services.notifications.models import Template, TemplateVersion
from services.notifications.sms_text import sms_length
from shared.db import utcnow
from shared.errors import InvalidInput, NotFound
from shared.timezones import zone_of

CHANNELS = ("sms", "email")
DEFAULT_LANGUAGE = "id"


def rupiah(amount, language: str = DEFAULT_LANGUAGE) -> str:
    """`Rp 2.000.000` (Indonesian digit grouping in both languages, as offices print it)."""
    if amount is None:
        return ""
    return "Rp " + format_decimal(int(amount), locale="id")


def _as_date(value, region_code: str | None = None):
    if isinstance(value, datetime):
        return value.astimezone(zone_of(region_code)).date()
    if isinstance(value, str):
        try:
            return _as_date(datetime.fromisoformat(value), region_code)
        except ValueError:
            return date.fromisoformat(value)
    return value


def long_date(value, language: str = DEFAULT_LANGUAGE, region_code: str | None = None) -> str:
    """`29 November 2026`, with the month in the message's language."""
    if value in (None, ""):
        return ""
    return format_date(_as_date(value, region_code), "d MMMM y", locale=language)


def _environment(language: str, region_code: str | None) -> SandboxedEnvironment:
    environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    environment.filters["rupiah"] = lambda v: rupiah(v, language)
    environment.filters["tanggal"] = lambda v: long_date(v, language, region_code)
    return environment


# What a template may use; the preview and the check on saving render with these.
SAMPLE = {
    "group_name": "KUBE Tempe Makmur",
    "member_name": "Siti Aminah",
    "amount": 20_000_000,
    "stage": "approved",
    "reason": "Surat keterangan desa belum dilampirkan.",
    "transfer_date": "2026-11-25",
    "transfer_reference": "BRI-TRX-0001",
    "due_at": "2026-12-25T16:00:00+00:00",
    "deadline_stage": "submitted",
    "responsible_role": "verifikator",
    "grant_ref": "A1B2C3D4",
    "text": "Pertemuan kelompok hari Senin pukul 09.00 di balai desa.",
}


@lru_cache(maxsize=512)
def _compiled(source: str, language: str, province: str):
    """A template compiled once per text, language and province (whose time zone its dates
    are in): a group's members share one, and compiling costs far more than rendering."""
    return _environment(language, province).from_string(source)


def render(body: str, subject: str | None, data: dict, *, language: str, region_code=None):
    """The template's subject and text with `data`; InvalidInput naming what fails."""
    province = (region_code or "")[:2]
    try:
        text = _compiled(body, language, province).render(**data).strip()
        title = _compiled(subject, language, province).render(**data).strip() if subject else None
    except TemplateError as exc:
        raise InvalidInput.field("body", f"The template does not render: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidInput.field("body", f"The template does not render: {exc}") from None
    return title, text


def check(body: str, subject: str | None, channel: str, language: str) -> None:
    """Refuse a template that does not render with the sample data, or an email without a
    subject."""
    if channel == "email" and not (subject or "").strip():
        raise InvalidInput.field("subject", "An email template needs a subject.")
    _, text = render(body, subject, SAMPLE, language=language)
    if not text:
        raise InvalidInput.field("body", "The template renders to nothing.")


def preview(body: str, subject: str | None, channel: str, language: str, data: dict) -> dict:
    """The rendered text with its SMS encoding, length and parts."""
    title, text = render(body, subject, {**SAMPLE, **data}, language=language)
    encoding, length, parts = sms_length(text)
    return {
        "subject": title,
        "body": text,
        "encoding": encoding if channel == "sms" else None,
        "length": length,
        "parts": parts if channel == "sms" else None,
    }


def current_version(session: Session, template: Template) -> TemplateVersion:
    return session.get(TemplateVersion, (template.id, template.version))


def find_template(session: Session, template_id: uuid.UUID) -> Template:
    found = session.get(Template, template_id)
    if found is None:
        raise NotFound("No template with this id.")
    return found


def save_version(
    session: Session, template: Template, body: str, subject: str | None, *, actor: str
) -> TemplateVersion:
    """Store a new version of a template once it renders; messages made from now on use it."""
    check(body, subject, template.channel, template.language)
    template.version += 1
    template.updated_at = utcnow()
    version = TemplateVersion(
        template_id=template.id,
        version=template.version,
        subject=subject,
        body=body,
        created_by=actor,
    )
    session.add(version)
    session.flush()
    return version
