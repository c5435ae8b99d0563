"""Indonesia's three time zones, by the province part of a Kemendagri region code."""

from __future__ import annotations

from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")  # UTC+7
WITA = ZoneInfo("Asia/Makassar")  # UTC+8
WIT = ZoneInfo("Asia/Jayapura")  # UTC+9

# Bali, Nusa Tenggara, South, East and North Kalimantan, and every Sulawesi province.
_WITA_PROVINCES = frozenset(
    {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
)
# Maluku, North Maluku and the Papua provinces.
_WIT_PROVINCES = frozenset({"81", "82", "91", "92", "93", "94", "95", "96"})


def zone_of(region_code: str | None) -> ZoneInfo:
    """The time zone of a region (WIB where the code names no province, as Jakarta does)."""
    province = (region_code or "")[:2]
    if province in _WITA_PROVINCES:
        return WITA
    if province in _WIT_PROVINCES:
        return WIT
    return WIB


def provinces_in(zone: ZoneInfo) -> list[str]:
    """The province codes whose time zone is `zone` (WIB: every province not listed), for a
    query that counts local dates."""
    return sorted({WITA: _WITA_PROVINCES, WIT: _WIT_PROVINCES}.get(zone, ()))
