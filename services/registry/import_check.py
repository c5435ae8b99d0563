"""Checking one group of an import file: its rows validated with the same input rules as the
API, every problem pointed at its row and column."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date

import marshmallow as ma

from services.registry.identity import (
    IdentityError,
    normalize_email,
    parse_nik,
    parse_region_code,
    validate_kk,
)
from services.registry.inputs import GENDERS, GroupInput, MemberInput
from shared.events.contracts import LANGUAGES, MEMBER_ROLES
from shared.scope import RegionScope
from shared.validation import flatten_messages, unstorable_text

GROUP_DETAIL_COLUMNS = ("address", "business_type", "founded_on")
MEMBER_COLUMNS = (
    "nik",
    "kk_number",
    "name",
    "phone",
    "role",
    "gender",
    "birth_date",
    "email",
    "language",
)
# What the input rules call a field, as the file's header names its column.
GROUP_FIELD_COLUMNS = {"name": "group_name", "region_code": "village_code"}

_group_input = GroupInput()
_member_input_schema = MemberInput()


@dataclass
class CheckedGroup:
    """The rows of one group in the file, checked: what to create, or why not."""

    name: str
    rows: list[tuple[int, dict[str, str]]]
    data: dict | None = None
    members: list[tuple[int, dict]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def error(self, row: int, field_name: str, message: str) -> None:
        self.errors.append(
            {"row": row, "group": self.name, "field": field_name, "message": message}
        )


def _plain_name(name: str) -> str:
    return " ".join(name.split())


def group_key(record: dict[str, str]) -> tuple[str, str]:
    """Which group a row belongs to: its group name and village as written, plainly."""
    return key_of(record.get("group_name", ""), record.get("village_code", ""))


# The rows of a group repeat its name and village, so most rows find their key here.
@functools.lru_cache(maxsize=4096)
def key_of(group_name: str, village_code: str) -> tuple[str, str]:
    return _plain_name(group_name).lower(), re.sub(r"[.\s]", "", village_code)


def _member_input(record: dict[str, str]) -> dict[str, str]:
    data = {column: record[column] for column in MEMBER_COLUMNS if column in record}
    # Spreadsheet users write Ketua, f, ID: the values are case-insensitive.
    for column, normalize in (("role", str.lower), ("gender", str.upper), ("language", str.lower)):
        if column in data:
            data[column] = normalize(data[column])
    return data


# What normalize_phone accepts, written out for the common case: an Indonesian mobile number
# (8, then not 0 or 4: 80x are premium, toll-free and shared-cost numbers, 84 is unassigned)
# of 10 to 13 digits with its 0. Anything else goes through normalize_phone itself, and a
# test holds the two to agreeing (tests/registry/test_import_check.py).
_SEPARATORS = re.compile(r"[\s.\-]")
_PLAIN_MOBILE = re.compile(r"(?:\+62|62|0)(8[1-35-9][0-9]{7,10})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _quick_member(data: dict[str, str], today: date) -> dict | None:
    """A row's member as MemberInput loads it, when every value is plainly valid; None when
    anything needs the schema (which then names what is wrong)."""
    try:
        nik, kk, name, phone = data["nik"], data["kk_number"], data["name"], data["phone"]
    except KeyError:
        return None
    role = data.get("role", "anggota")
    language = data.get("language", "id")
    if role not in MEMBER_ROLES or language not in LANGUAGES or not 2 <= len(name) <= 200:
        return None
    mobile = _PLAIN_MOBILE.fullmatch(_SEPARATORS.sub("", phone))
    # The other values are digits or checked by their own rules.
    if mobile is None or not name.strip() or unstorable_text(name):
        return None
    try:
        info = parse_nik(nik, today=today)
        validate_kk(kk)
        email = normalize_email(data["email"]) if "email" in data else None
    except IdentityError:
        return None
    gender = data.get("gender", info.gender)
    birth = data.get("birth_date")
    if gender not in GENDERS or gender != info.gender:
        return None
    if birth is not None and (
        not _ISO_DATE.fullmatch(birth) or birth != info.birth_date.isoformat()
    ):
        return None
    return {
        "nik": nik,
        "kk_number": kk,
        "name": name,
        "gender": gender,
        "birth_date": info.birth_date,
        "phone": "+62" + mobile.group(1),
        "email": email,
        "role": role,
        "language": language,
        "village_code": None,
    }


_PLAIN_VILLAGE = re.compile(r"[0-9]{10}")


def _quick_group(details: dict[str, str], today: date) -> dict | None:
    """A group's details as GroupInput loads them, when every value is plainly valid; None when
    anything needs the schema (which then names what is wrong)."""
    name, code = details.get("name"), details.get("region_code")
    if name is None or code is None or not 3 <= len(name) <= 200 or not name.strip():
        return None
    address, business_type = details.get("address"), details.get("business_type")
    founded = details.get("founded_on")
    if (address is not None and len(address) > 500) or (
        business_type is not None and len(business_type) > 100
    ):
        return None
    if not _PLAIN_VILLAGE.fullmatch(code):
        return None
    try:
        parse_region_code(code, level="village")
    except IdentityError:
        return None
    if any(unstorable_text(value) for value in (name, address, business_type) if value):
        return None
    founded_on = None
    if founded is not None:
        if not _ISO_DATE.fullmatch(founded):
            return None
        try:
            founded_on = date.fromisoformat(founded)
        except ValueError:
            return None
        if founded_on > today:
            return None
    return {
        "name": name,
        "region_code": code,
        "address": address,
        "business_type": business_type,
        "founded_on": founded_on,
        "bank_account": None,
    }


def load_group(details: dict[str, str], today: date | None = None) -> dict:
    """A group's details as GroupInput loads them (the same values, the same errors)."""
    group = _quick_group(details, today or date.today())
    if group is not None:
        return group
    return _group_input.load(details)


def load_member(record: dict[str, str], today: date | None = None) -> dict:
    """A row's member as MemberInput loads it (the same values, the same errors): plainly
    valid rows by direct checks, about 40 times faster than the schema, the rest by it."""
    data = _member_input(record)
    member = _quick_member(data, today or date.today())
    if member is not None:
        return member
    return _member_input_schema.load(data)


def check_group(
    rows: list[tuple[int, dict[str, str]]],
    scope: RegionScope,
    seen_niks: dict[str, int],
    today: date | None = None,
) -> CheckedGroup:
    """Validate a group's rows with the API's own schemas, collecting every problem."""
    first_row, first = rows[0]
    group = CheckedGroup(name=_plain_name(first.get("group_name", "")), rows=rows)
    details = {"name": group.name, "region_code": first.get("village_code", "")}
    details.update({c: first[c] for c in GROUP_DETAIL_COLUMNS if c in first})
    try:
        group.data = load_group({k: v for k, v in details.items() if v}, today)
    except ma.ValidationError as exc:
        for entry in flatten_messages(exc.messages):
            column = GROUP_FIELD_COLUMNS.get(entry["field"], entry["field"])
            group.error(first_row, column, entry["message"])
    else:
        if not scope.covers(group.data["region_code"]):
            group.error(
                first_row,
                "village_code",
                f"village {group.data['region_code']} lies outside your region {scope.prefix}",
            )
    for number, record in rows:
        for column in GROUP_DETAIL_COLUMNS:
            if record.get(column, "") != first.get(column, ""):
                group.error(
                    number,
                    column,
                    f"{column} differs from row {first_row} of the same group; every row of a "
                    "group repeats the same group details",
                )
        try:
            member = load_member(record, today)
        except ma.ValidationError as exc:
            for entry in flatten_messages(exc.messages):
                group.error(number, entry["field"], entry["message"])
            continue
        group.members.append((number, member))
        if member["nik"] in seen_niks:
            group.error(number, "nik", f"the same NIK is also on row {seen_niks[member['nik']]}")
        else:
            seen_niks[member["nik"]] = number
    return group
