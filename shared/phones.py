"""Indonesian mobile numbers, as every service takes them (a member's phone, an opt-out, a
provider's inbound sender): one rule, so the number a member is registered with is the
number an opt-out for it names."""

from __future__ import annotations

import re

import phonenumbers

COUNTRY_PREFIX = "+62"
_SEPARATORS = re.compile(r"[\s.\-]")
# The prefix is captured apart so that 628... is never read as a national number.
_INDONESIAN_MOBILE = re.compile(r"(?:\+62|62|0)(8[0-9]+)")
# 10 to 13 digits with the leading 0, so 9 to 12 after it.
_NATIONAL_LENGTHS = range(9, 13)
_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


class NotAMobileNumber(ValueError):
    """The value is not an Indonesian mobile number (the message never repeats it)."""


def indonesian_mobile(value: str) -> str:
    """An Indonesian mobile number written 08..., 628... or +628... (spaces, dots and dashes
    allowed between digits) as E.164 (`+628...`); `NotAMobileNumber` otherwise."""
    match = _INDONESIAN_MOBILE.fullmatch(_SEPARATORS.sub("", value))
    if match is None or len(match.group(1)) not in _NATIONAL_LENGTHS:
        raise NotAMobileNumber("not an Indonesian mobile number")
    try:
        number = phonenumbers.parse(COUNTRY_PREFIX + match.group(1), "ID")
    except phonenumbers.NumberParseException:
        raise NotAMobileNumber("not an Indonesian mobile number") from None
    # 08 also starts toll-free and premium numbers, which no one can receive an SMS on.
    if not phonenumbers.is_valid_number(number) or (
        phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        raise NotAMobileNumber("not an Indonesian mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
