"""How long an SMS is: its encoding, its length in that encoding's units, and its parts.

GSM 03.38 (GSM-7) carries 160 characters in one SMS; a character of its extension table
(`^{}\\[~]|€` and form feed) takes two, an escape and itself. A text with any character
outside both tables goes as UCS-2 (UTF-16 on today's phones): 70 units in one SMS, an
emoji outside the Basic Multilingual Plane taking two. A longer text is split into parts
that each give up room to a header: 153 GSM-7 units or 67 UCS-2 units a part, and no part
ends in the middle of an escape pair or a surrogate pair.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

GSM7: Literal["GSM-7"] = "GSM-7"
UCS2: Literal["UCS-2"] = "UCS-2"

# The GSM 03.38 basic character set, in table order (0x1B, the escape, is left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    + "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    + "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    + "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table, reached through the escape: each takes two units.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_PART_UNITS = {GSM7: 160, UCS2: 70}
MULTI_PART_UNITS = {GSM7: 153, UCS2: 67}


class SmsLength(NamedTuple):
    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    parts: int


def non_gsm7_characters(text: str) -> list[str]:
    """The characters of `text` that force UCS-2, each once, in order of appearance."""
    return list(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))


def _unit_widths(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def sms_length(text: str) -> SmsLength:
    """The encoding, length in units and number of parts of `text` sent as one SMS
    (an empty text still takes one part)."""
    encoding = UCS2 if non_gsm7_characters(text) else GSM7
    widths = _unit_widths(text, encoding)
    units = sum(widths)
    if units <= SINGLE_PART_UNITS[encoding]:
        return SmsLength(encoding, units, 1)
    room = MULTI_PART_UNITS[encoding]
    parts, used = 1, 0
    for width in widths:
        # A pair (escape + character, or a surrogate pair) never straddles two parts.
        if used + width > room:
            parts, used = parts + 1, 0
        used += width
    return SmsLength(encoding, units, parts)
