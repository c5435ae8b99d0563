"""Identity data of member households: NIK, No. KK, phone, email and Kemendagri region codes.

Plain domain logic: no Flask, no database. Every check raises `IdentityError`, which names
the field and carries an English message that never repeats a NIK, No. KK or phone number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from email_validator import EmailNotValidError, validate_email

from shared.phones import COUNTRY_PREFIX, NotAMobileNumber, indonesian_mobile


class IdentityError(ValueError):
    """A value of identity data that fails validation, naming the field it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    def __reduce__(self):
        # Pickling (e.g. a Celery result) must rebuild the error with both arguments.
        return type(self), (self.field, self.message)

    def __repr__(self) -> str:
        return f"IdentityError(field={self.field!r}, message={self.message!r})"


# str.isdigit() also accepts non-ASCII digits ("٣", "³"), which no register would hold.
_DIGITS = re.compile(r"[0-9]+")


def _is_ascii_digits(value: str) -> bool:
    return _DIGITS.fullmatch(value) is not None


def _require_str(value: object, field: str, label: str) -> str:
    # Values arrive from JSON too, where a number or null is a client mistake, not a crash.
    if not isinstance(value, str):
        raise IdentityError(field, f"{label} must be a string")
    return value


# --- Region codes (Kemendagri) -------------------------------------------------------------

_LEVEL_BY_LENGTH = {2: "province", 4: "regency", 6: "district", 10: "village"}
# Printed codes group their digits as 64.72.01.1001.
_GROUP_LENGTHS = (2, 2, 2, 4)
_GROUP_SLICES = ((0, 2), (2, 4), (4, 6), (6, 10))
_PARENT_LENGTH = {4: 2, 6: 4, 10: 6}
_LEVEL_HINTS = {
    "province": "a 2-digit province code such as 64",
    "regency": "a 4-digit regency or city code such as 64.72",
    "district": "a 6-digit district code such as 64.72.01",
    "village": "a 10-digit village code such as 64.72.01.1001",
}


def _region_problem(code: str) -> str | None:
    """Return what is structurally wrong with a plain 2/4/6/10-digit code, or None."""
    if not 11 <= int(code[:2]) <= 99:
        return "province part must be 11 to 99"
    if len(code) >= 4 and code[2:4] == "00":
        return "regency part must not be 00"
    if len(code) >= 6 and code[4:6] == "00":
        return "district part must not be 00"
    # Village parts start with 1 for a kelurahan, 2 for a desa and 3 for a desa adat
    # (customary villages, e.g. in 91.03 Jayapura), which also rules out 0000.
    if len(code) == 10 and code[6] not in "123":
        return "village part must start with 1 (kelurahan), 2 (desa) or 3 (desa adat)"
    return None


@dataclass(frozen=True)
class RegionCode:
    """A structurally valid Kemendagri region code (province, regency, district or village)."""

    code: str
    level: str

    def __post_init__(self) -> None:
        # Built directly (not via parse_region_code) it must still hold a consistent code.
        if not _is_ascii_digits(self.code) or _LEVEL_BY_LENGTH.get(len(self.code)) != self.level:
            raise IdentityError(
                "region_code", "region_code must be 2, 4, 6 or 10 digits matching its level"
            )
        problem = _region_problem(self.code)
        if problem:
            raise IdentityError("region_code", f"region_code {problem}")

    @property
    def dotted(self) -> str:
        """The printed form with dots, such as 64.72.01.1001."""
        return ".".join(self.code[a:b] for a, b in _GROUP_SLICES if a < len(self.code))

    @property
    def parent(self) -> str | None:
        """The plain code of the level above, or None for a province."""
        length = _PARENT_LENGTH.get(len(self.code))
        return self.code[:length] if length else None

    @property
    def district(self) -> str | None:
        """The 6-digit district (kecamatan) code, or None for a province or regency."""
        return self.code[:6] if self.level in ("district", "village") else None

    @property
    def is_city(self) -> bool:
        """True only for a regency-level code of a city (kota, 71 to 99); False otherwise."""
        # A district or village inside a city is not itself a city, so it reports False.
        return self.level == "regency" and int(self.code[2:4]) >= 71

    @property
    def is_kelurahan(self) -> bool:
        """True only for a village code of a kelurahan (part starts with 1); False otherwise."""
        return self.level == "village" and self.code[6] == "1"


def parse_region_code(
    value: str, *, field: str = "region_code", level: str | None = None
) -> RegionCode:
    """Parse a dotted or plain Kemendagri region code, optionally of one required level."""
    if level is not None and level not in _LEVEL_HINTS:
        # A wrong level is the caller's bug, not the user's input, so it is no IdentityError.
        raise ValueError(f"unknown region level {level!r}")
    text = _require_str(value, field, field).strip()
    expected = f"{field} must be {_LEVEL_HINTS[level]}" if level else None

    if "." in text:
        groups = text.split(".")
        lengths = tuple(len(group) for group in groups)
        if lengths != _GROUP_LENGTHS[: len(groups)] or not all(map(_is_ascii_digits, groups)):
            raise IdentityError(
                field,
                expected
                or f"{field} must be written in groups of 2, 2, 2 and 4 digits, "
                "such as 64.72.01.1001",
            )
        code = "".join(groups)
    else:
        code = text
        if code and not _is_ascii_digits(code):
            raise IdentityError(field, expected or f"{field} must contain digits only")
        if len(code) not in _LEVEL_BY_LENGTH:
            raise IdentityError(field, expected or f"{field} must be 2, 4, 6 or 10 digits long")

    found = _LEVEL_BY_LENGTH[len(code)]
    if level is not None and found != level:
        raise IdentityError(field, f"{field} must be {_LEVEL_HINTS[level]}")
    problem = _region_problem(code)
    if problem:
        raise IdentityError(field, f"{field} {problem}")
    return RegionCode(code=code, level=found)


def is_region_prefix(value: str) -> bool:
    """Tell whether a value is a token region scope: "" (everywhere) or a plain region code."""
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    return (
        _is_ascii_digits(value)
        and len(value) in _LEVEL_BY_LENGTH
        and _region_problem(value) is None
    )


# --- NIK and No. KK ------------------------------------------------------------------------

_NIK_LENGTH = 16
# Women's NIKs carry the birth day plus 40.
_FEMALE_DAY_OFFSET = 40


@dataclass(frozen=True)
class NikInfo:
    """What a valid NIK encodes: issuing district, birth date, gender and serial."""

    nik: str
    region_code: str
    birth_date: date
    gender: str
    serial: str


def _resolve_birth_year(yy: int, month: int, day: int, today: date) -> int:
    # Compare tuples, not dates: 29 Feb 00 exists in 2000 but not in 1900.
    year = 2000 + yy
    return year if (year, month, day) <= (today.year, today.month, today.day) else year - 100


def parse_nik(value: str, *, field: str = "nik", today: date | None = None) -> NikInfo:
    """Validate a NIK and decode the birth date, gender and issuing district it carries."""
    nik = _require_str(value, field, "NIK").strip()
    # An empty value is reported as too short, not as containing non-digits.
    if nik and not _is_ascii_digits(nik):
        raise IdentityError(field, "NIK must contain digits only (no spaces, dots or letters)")
    if len(nik) != _NIK_LENGTH:
        raise IdentityError(field, "NIK must be exactly 16 digits")

    # Structure only: the NIK keeps the district of first issue for life, so never
    # compare it with the current address.
    if _region_problem(nik[:6]):
        raise IdentityError(
            field,
            "NIK digits 1-6 must be a district code (province 11-99, regency and district not 00)",
        )

    encoded_day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if 1 <= encoded_day <= 31:
        gender, day = "M", encoded_day
    elif 1 + _FEMALE_DAY_OFFSET <= encoded_day <= 31 + _FEMALE_DAY_OFFSET:
        gender, day = "F", encoded_day - _FEMALE_DAY_OFFSET
    else:
        raise IdentityError(field, "NIK digits 7-8 must be a birth day 01-31, or 41-71 for women")
    if not 1 <= month <= 12:
        raise IdentityError(field, "NIK digits 9-10 must be a birth month 01-12")
    year = _resolve_birth_year(yy, month, day, today or date.today())
    try:
        birth_date = date(year, month, day)
    except ValueError:
        raise IdentityError(field, "NIK digits 7-12 are not a real calendar date") from None

    serial = nik[12:]
    if serial == "0000":
        raise IdentityError(field, "NIK serial (digits 13-16) must not be 0000")
    return NikInfo(
        nik=nik, region_code=nik[:6], birth_date=birth_date, gender=gender, serial=serial
    )


def validate_kk(value: str, *, field: str = "kk_number") -> str:
    """Validate a family card number (No. KK) and return it without surrounding whitespace."""
    kk = _require_str(value, field, "No. KK").strip()
    if kk and not _is_ascii_digits(kk):
        raise IdentityError(field, "No. KK must contain digits only (no spaces, dots or letters)")
    if len(kk) != _NIK_LENGTH:
        raise IdentityError(field, "No. KK must be exactly 16 digits")
    if kk.startswith("00"):
        raise IdentityError(field, "No. KK must not start with 00")
    return kk


def check_nik_agrees(
    info: NikInfo, *, gender: str | None, birth_date: date | None
) -> list[IdentityError]:
    """List the given gender and birth date values that contradict what the NIK encodes."""
    errors: list[IdentityError] = []
    if gender is not None and gender.strip().upper() != info.gender:
        errors.append(IdentityError("gender", "gender does not match the gender in the NIK"))
    if birth_date is not None:
        # A datetime never equals a date, even on the same day.
        given = birth_date.date() if isinstance(birth_date, datetime) else birth_date
        if given != info.birth_date:
            errors.append(
                IdentityError("birth_date", "birth_date does not match the birth date in the NIK")
            )
    return errors


# --- Masking -------------------------------------------------------------------------------

_MASK_KEEP = 4


def mask_nik(value: str) -> str:
    """Hide all but the first 4 and last 4 characters of a NIK or No. KK."""
    # Up to 8 characters, keeping 4 + 4 would show everything, so mask it all.
    if len(value) <= 2 * _MASK_KEEP:
        return "*" * len(value)
    return value[:_MASK_KEEP] + "*" * (len(value) - 2 * _MASK_KEEP) + value[-_MASK_KEEP:]


mask_kk = mask_nik

_PHONE_COUNTRY = COUNTRY_PREFIX
_PHONE_KEEP = 3


def mask_phone(e164: str) -> str:
    """Hide the digits of an Indonesian E.164 number between +62 and the last 3."""
    rest = e164[len(_PHONE_COUNTRY) :]
    # Anything that is not a +62 number with digits left to hide is masked entirely.
    if not e164.startswith(_PHONE_COUNTRY) or len(rest) <= _PHONE_KEEP:
        return "*" * len(e164)
    return _PHONE_COUNTRY + "*" * (len(rest) - _PHONE_KEEP) + rest[-_PHONE_KEEP:]


# --- Contacts ------------------------------------------------------------------------------


def normalize_phone(value: str, *, field: str = "phone") -> str:
    """Validate an Indonesian mobile number (08..., 628..., +628...) and return it as E.164."""
    try:
        return indonesian_mobile(_require_str(value, field, field))
    except NotAMobileNumber:
        raise IdentityError(
            field, f"{field} must be an Indonesian mobile number such as 081234567890"
        ) from None


def normalize_email(value: str, *, field: str = "email") -> str:
    """Check an email address's syntax (no DNS lookup) and return its normalized form."""
    text = _require_str(value, field, field).strip()
    try:
        # Offices run offline and in tests; deliverability is proven by the mail, not DNS.
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise IdentityError(field, f"{field} is not a valid email address: {exc}") from None
