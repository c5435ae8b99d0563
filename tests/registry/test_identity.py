"""Unit tests of the registry's identity rules: NIK, No. KK, masking, contacts, regions."""

import pickle
from datetime import date, datetime

import pytest

from services.registry.identity import (
    IdentityError,
    NikInfo,
    RegionCode,
    check_nik_agrees,
    is_region_prefix,
    mask_kk,
    mask_nik,
    mask_phone,
    normalize_email,
    normalize_phone,
    parse_nik,
    parse_region_code,
    validate_kk,
)

# A fixed "today" keeps century resolution independent of the day the tests run.
TODAY = date(2024, 6, 1)


def nik(region="337401", day="12", month="03", year="85", serial="0001"):
    """Build a NIK from its parts so each test shows the part it is about."""
    return f"{region}{day}{month}{year}{serial}"


def nik_error(value, **kwargs):
    with pytest.raises(IdentityError) as caught:
        parse_nik(value, today=TODAY, **kwargs)
    return caught.value


# --- IdentityError ------------------------------------------------------------------------


def test_identity_error_is_a_value_error_with_field_and_message():
    error = IdentityError("nik", "NIK must be exactly 16 digits")

    assert isinstance(error, ValueError)
    assert error.field == "nik"
    assert error.message == "NIK must be exactly 16 digits"
    assert str(error) == "NIK must be exactly 16 digits"


def test_identity_error_survives_pickling():
    # Trusted bytes made one line above.
    error = pickle.loads(pickle.dumps(IdentityError("phone", "bad phone")))  # noqa: S301

    assert (error.field, error.message) == ("phone", "bad phone")


# --- NIK: valid numbers -------------------------------------------------------------------


def test_valid_male_nik_is_decoded():
    info = parse_nik("3374011203850001", today=TODAY)

    assert info == NikInfo(
        nik="3374011203850001",
        region_code="337401",
        birth_date=date(1985, 3, 12),
        gender="M",
        serial="0001",
    )


def test_valid_female_nik_has_forty_added_to_the_day():
    # Day 55 = 15 + 40: a woman born 15 July 1990, issued in Samarinda (64.72.01).
    info = parse_nik("6472015507900003", today=TODAY)

    assert info.gender == "F"
    assert info.birth_date == date(1990, 7, 15)
    assert info.region_code == "647201"
    assert info.serial == "0003"


@pytest.mark.parametrize(
    ("encoded_day", "gender", "day"),
    [("01", "M", 1), ("31", "M", 31), ("41", "F", 1), ("71", "F", 31)],
)
def test_nik_day_boundaries_decode_gender_and_day(encoded_day, gender, day):
    info = parse_nik(nik(day=encoded_day, month="01", year="90"), today=TODAY)

    assert info.gender == gender
    assert info.birth_date == date(1990, 1, day)


def test_nik_surrounding_whitespace_is_stripped():
    assert parse_nik("  6472015507900003\n", today=TODAY).nik == "6472015507900003"


def test_nik_serial_9999_is_accepted():
    assert parse_nik(nik(serial="9999"), today=TODAY).serial == "9999"


def test_nik_without_today_uses_the_current_date():
    assert parse_nik("6472015507900003").birth_date == date(1990, 7, 15)


# --- NIK: malformed numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "33740112038500a1",
        "6472.01.550790.0003",
        "6472 0155 0790 0003",
        "6472-0155-0790-0003",
        "+472015507900003",
        "３３７４０１１２０３８５０００１",  # full-width digits  # noqa: RUF001
        "٣٣٧٤٠١١٢٠٣٨٥٠٠٠١",  # Arabic-Indic digits
    ],
)
def test_nik_with_non_digits_is_rejected(value):
    error = nik_error(value)

    assert error.field == "nik"
    assert error.message == "NIK must contain digits only (no spaces, dots or letters)"


@pytest.mark.parametrize("value", ["", "337401120385001", "33740112038500011", "3374"])
def test_nik_of_wrong_length_is_rejected(value):
    assert nik_error(value).message == "NIK must be exactly 16 digits"


@pytest.mark.parametrize("value", [None, 3374011203850001])
def test_nik_that_is_not_a_string_is_rejected(value):
    assert nik_error(value).message == "NIK must be a string"


def test_nik_error_carries_the_given_field_name():
    assert nik_error("123", field="members.2.nik").field == "members.2.nik"


# --- NIK: birth date ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded_day", ["00", "32", "39", "40", "72", "99"], ids=lambda d: f"day-{d}"
)
def test_nik_with_impossible_day_is_rejected(encoded_day):
    error = nik_error(nik(day=encoded_day))

    assert error.message == "NIK digits 7-8 must be a birth day 01-31, or 41-71 for women"


def test_nik_with_day_72_is_rejected():
    assert "41-71 for women" in nik_error(nik(day="72")).message


def test_nik_with_day_00_is_rejected():
    assert "birth day" in nik_error(nik(day="00")).message


def test_nik_with_day_40_is_rejected():
    assert "birth day" in nik_error(nik(day="40")).message


@pytest.mark.parametrize("month", ["00", "13", "99"])
def test_nik_with_month_outside_1_to_12_is_rejected(month):
    assert nik_error(nik(month=month)).message == "NIK digits 9-10 must be a birth month 01-12"


@pytest.mark.parametrize(
    ("encoded_day", "month"),
    [("31", "02"), ("71", "02"), ("30", "02"), ("31", "04"), ("71", "11")],
)
def test_nik_with_day_that_month_does_not_have_is_rejected(encoded_day, month):
    error = nik_error(nik(day=encoded_day, month=month, year="90"))

    assert error.message == "NIK digits 7-12 are not a real calendar date"


def test_nik_with_31_february_is_rejected():
    assert "real calendar date" in nik_error("3374013102900001").message


@pytest.mark.parametrize(
    ("encoded_day", "year", "born"),
    [
        ("29", "04", date(2004, 2, 29)),
        ("69", "04", date(2004, 2, 29)),
        ("29", "96", date(1996, 2, 29)),
    ],
)
def test_nik_with_29_february_of_a_leap_year_is_accepted(encoded_day, year, born):
    assert parse_nik(nik(day=encoded_day, month="02", year=year), today=TODAY).birth_date == born


@pytest.mark.parametrize("year", ["03", "23", "97"])
def test_nik_with_29_february_of_a_common_year_is_rejected(year):
    assert "real calendar date" in nik_error(nik(day="29", month="02", year=year)).message


def test_nik_with_29_february_00_is_the_leap_year_2000():
    assert parse_nik(nik(day="29", month="02", year="00"), today=TODAY).birth_date == date(
        2000, 2, 29
    )


def test_nik_with_29_february_00_before_2000_is_1900_which_is_not_leap():
    with pytest.raises(IdentityError, match="real calendar date"):
        parse_nik(nik(day="29", month="02", year="00"), today=date(1999, 12, 31))


# --- NIK: century -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "today", "born"),
    [
        ("05", date(2024, 6, 1), date(2005, 3, 12)),
        ("24", date(2024, 6, 1), date(2024, 3, 12)),
        ("25", date(2024, 6, 1), date(1925, 3, 12)),
        ("99", date(2024, 6, 1), date(1999, 3, 12)),
        ("00", date(2024, 6, 1), date(2000, 3, 12)),
        ("25", date(2025, 3, 12), date(2025, 3, 12)),
        ("25", date(2025, 3, 11), date(1925, 3, 12)),
    ],
    ids=["2005", "this-year-past", "next-year", "1999", "2000", "born-today", "born-tomorrow"],
)
def test_nik_century_is_chosen_so_the_birth_date_is_not_in_the_future(year, today, born):
    assert parse_nik(nik(year=year), today=today).birth_date == born


# --- NIK: serial and region ---------------------------------------------------------------


def test_nik_with_serial_0000_is_rejected():
    assert nik_error(nik(serial="0000")).message == "NIK serial (digits 13-16) must not be 0000"


@pytest.mark.parametrize(
    "region",
    ["007401", "017401", "107401", "330001", "337400", "000000"],
    ids=["province-00", "province-01", "province-10", "regency-00", "district-00", "all-zero"],
)
def test_nik_with_invalid_region_part_is_rejected(region):
    assert nik_error(nik(region=region)).message.startswith("NIK digits 1-6 must be a district")


@pytest.mark.parametrize("region", ["110101", "337401", "647201", "999999"])
def test_nik_region_part_is_checked_for_structure_only(region):
    # Not compared with any address or region list: the NIK keeps its district for life.
    assert parse_nik(nik(region=region), today=TODAY).region_code == region


@pytest.mark.parametrize(
    ("value", "message_start"),
    [
        ("33740x1203850001", "NIK must contain digits only"),
        ("337401120385001", "NIK must be exactly 16 digits"),
        (nik(region="003374"), "NIK digits 1-6"),
        (nik(day="72"), "NIK digits 7-8"),
        (nik(month="13"), "NIK digits 9-10"),
        (nik(day="31", month="02"), "NIK digits 7-12"),
        (nik(serial="0000"), "NIK serial"),
    ],
)
def test_each_nik_failure_has_its_own_message(value, message_start):
    assert nik_error(value).message.startswith(message_start)


# --- NIK agreement with gender and birth date ---------------------------------------------


WOMAN = parse_nik("6472015507900003", today=TODAY)


def test_matching_gender_and_birth_date_give_no_errors():
    assert check_nik_agrees(WOMAN, gender="F", birth_date=date(1990, 7, 15)) == []


def test_gender_disagreeing_with_nik_is_reported():
    errors = check_nik_agrees(WOMAN, gender="M", birth_date=None)

    assert [e.field for e in errors] == ["gender"]
    assert "does not match" in errors[0].message


def test_birth_date_disagreeing_with_nik_is_reported():
    errors = check_nik_agrees(WOMAN, gender=None, birth_date=date(1990, 7, 16))

    assert [e.field for e in errors] == ["birth_date"]


def test_both_disagreements_are_reported_together():
    errors = check_nik_agrees(WOMAN, gender="M", birth_date=date(1990, 5, 15))

    assert [e.field for e in errors] == ["gender", "birth_date"]


def test_none_values_are_not_checked_against_nik():
    assert check_nik_agrees(WOMAN, gender=None, birth_date=None) == []


def test_gender_letter_case_does_not_matter():
    assert check_nik_agrees(WOMAN, gender="f", birth_date=None) == []


def test_birth_datetime_on_the_nik_day_agrees():
    assert check_nik_agrees(WOMAN, gender=None, birth_date=datetime(1990, 7, 15, 8, 30)) == []


def test_disagreement_messages_do_not_repeat_personal_data():
    errors = check_nik_agrees(WOMAN, gender="M", birth_date=date(1990, 7, 16))

    for error in errors:
        assert "1990" not in error.message
        assert "6472015507900003" not in error.message


# --- No. KK -------------------------------------------------------------------------------


def test_valid_kk_is_returned_normalized():
    assert validate_kk(" 6472010101200001 ") == "6472010101200001"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("647201010120000", "No. KK must be exactly 16 digits"),
        ("", "No. KK must be exactly 16 digits"),
        ("64720101012000011", "No. KK must be exactly 16 digits"),
        ("6472.0101.0120.0001", "No. KK must contain digits only (no spaces, dots or letters)"),
        ("6472O10101200001", "No. KK must contain digits only (no spaces, dots or letters)"),
        ("0072010101200001", "No. KK must not start with 00"),
        (None, "No. KK must be a string"),
    ],
)
def test_invalid_kk_is_rejected(value, message):
    with pytest.raises(IdentityError) as caught:
        validate_kk(value)

    assert (caught.value.field, caught.value.message) == ("kk_number", message)


def test_kk_error_carries_the_given_field_name():
    with pytest.raises(IdentityError) as caught:
        validate_kk("1", field="family.kk")

    assert caught.value.field == "family.kk"


# --- Masking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("6472015507900003", "6472********0003"),
        ("123456789", "1234*6789"),
        ("12345678", "********"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_nik_keeps_first_and_last_four(value, masked):
    assert mask_nik(value) == masked


def test_mask_kk_masks_like_nik():
    assert mask_kk("6472010101200001") == "6472********0001"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+6281234567890", "+62********890"),
        ("+62811234567", "+62******567"),
        ("+62812", "******"),
        ("+14155552671", "************"),
        ("081234567890", "************"),
    ],
)
def test_mask_phone_keeps_country_code_and_last_three_digits(value, masked):
    assert mask_phone(value) == masked


# --- Phone numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "081234567890",
        "6281234567890",
        "+6281234567890",
        "0812 3456 7890",
        "0812-3456-7890",
        "0812.3456.7890",
        "+62 812-3456-7890",
        " 62 812 3456 7890 ",
    ],
)
def test_mobile_number_in_any_accepted_form_becomes_e164(value):
    assert normalize_phone(value) == "+6281234567890"


@pytest.mark.parametrize(
    ("value", "e164"),
    [
        ("0811234567", "+62811234567"),  # 10 digits with the 0
        ("0812345678901", "+62812345678901"),  # 13 digits with the 0
        ("085212345678", "+6285212345678"),
        ("089512345678", "+6289512345678"),
    ],
)
def test_mobile_numbers_of_10_to_13_digits_are_accepted(value, e164):
    assert normalize_phone(value) == e164


@pytest.mark.parametrize(
    "value",
    [
        "081234567",  # 9 digits with the 0
        "08123456789012",  # 14 digits with the 0
        "0812345",
        "",
    ],
)
def test_mobile_number_too_short_or_too_long_is_rejected(value):
    with pytest.raises(IdentityError):
        normalize_phone(value)


@pytest.mark.parametrize(
    "value",
    [
        "02112345678",  # Jakarta landline
        "+622112345678",
        "0541 123456",  # Balikpapan landline
        "08001234567",  # toll-free, valid but not a mobile
        "0809123456",
    ],
)
def test_landline_and_other_non_mobile_numbers_are_rejected(value):
    with pytest.raises(IdentityError):
        normalize_phone(value)


@pytest.mark.parametrize(
    "value",
    ["+14155552671", "+60123456789", "+6181234567890", "0062812345678", "81234567890"],
)
def test_non_indonesian_or_unprefixed_number_is_rejected(value):
    with pytest.raises(IdentityError):
        normalize_phone(value)


@pytest.mark.parametrize(
    "value",
    ["0812/3456/7890", "(0812) 34567890", "0812345678ab", "+62+81234567890", None, 81234567890],
)
def test_phone_with_other_characters_or_types_is_rejected(value):
    with pytest.raises(IdentityError):
        normalize_phone(value)


def test_phone_error_names_field_and_gives_an_example():
    with pytest.raises(IdentityError) as caught:
        normalize_phone("021 1234 5678", field="contact_phone")

    assert caught.value.field == "contact_phone"
    assert caught.value.message == (
        "contact_phone must be an Indonesian mobile number such as 081234567890"
    )


# --- Email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("budi.santoso@example.com", "budi.santoso@example.com"),
        ("  Budi@Dinsos.KaltimProv.GO.ID ", "Budi@dinsos.kaltimprov.go.id"),
        ("siti+kube@mail.co.id", "siti+kube@mail.co.id"),
    ],
)
def test_valid_email_is_normalized(value, normalized):
    assert normalize_email(value) == normalized


@pytest.mark.parametrize(
    "value",
    [
        "",
        "budi",
        "budi@",
        "@example.com",
        "budi@@example.com",
        "budi@localhost",
        "bu di@x.com",
        None,
    ],
)
def test_invalid_email_is_rejected(value):
    with pytest.raises(IdentityError) as caught:
        normalize_email(value, field="contact_email")

    assert caught.value.field == "contact_email"
    assert caught.value.message.startswith("contact_email ")


# --- Region codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "level", "dotted", "parent", "district"),
    [
        ("64", "64", "province", "64", None, None),
        ("6472", "6472", "regency", "64.72", "64", None),
        ("64.72", "6472", "regency", "64.72", "64", None),
        ("647201", "647201", "district", "64.72.01", "6472", "647201"),
        ("64.72.01", "647201", "district", "64.72.01", "6472", "647201"),
        ("6472011001", "6472011001", "village", "64.72.01.1001", "647201", "647201"),
        ("64.72.01.1001", "6472011001", "village", "64.72.01.1001", "647201", "647201"),
        (" 33.74.01.2003 ", "3374012003", "village", "33.74.01.2003", "337401", "337401"),
    ],
)
def test_region_code_of_each_level_parses_dotted_or_plain(
    value, code, level, dotted, parent, district
):
    region = parse_region_code(value)

    assert (region.code, region.level) == (code, level)
    assert region.dotted == dotted
    assert region.parent == parent
    assert region.district == district


@pytest.mark.parametrize(
    ("value", "is_city"),
    [
        ("6472", True),
        ("6471", True),
        ("3399", True),
        ("3371", True),
        ("3370", False),
        ("6401", False),
        ("64", False),
        ("647201", False),
        ("6472011001", False),
    ],
)
def test_is_city_is_true_only_for_regency_codes_71_to_99(value, is_city):
    assert parse_region_code(value).is_city is is_city


@pytest.mark.parametrize(
    ("value", "is_kelurahan"),
    [("6472011001", True), ("6472011999", True), ("6401012001", False), ("647201", False)],
)
def test_is_kelurahan_is_true_only_for_village_parts_starting_with_1(value, is_kelurahan):
    assert parse_region_code(value).is_kelurahan is is_kelurahan


@pytest.mark.parametrize(
    "value",
    [
        "64.7201",
        "647.2.01",
        "64.72.01.01",
        "64.72.1.1001",
        "64.72.01.1001.5",
        "64.",
        ".64",
        "64..72",
        "64.72.01.10 01",
        "6a.72",
    ],
)
def test_dotted_region_code_with_bad_grouping_is_rejected(value):
    with pytest.raises(IdentityError) as caught:
        parse_region_code(value)

    assert "groups of 2, 2, 2 and 4 digits" in caught.value.message


@pytest.mark.parametrize("value", ["", "6", "647", "64720", "6472011", "647201100", "64720110011"])
def test_region_code_of_wrong_length_is_rejected(value):
    with pytest.raises(IdentityError, match="2, 4, 6 or 10 digits"):
        parse_region_code(value)


@pytest.mark.parametrize("value", ["64 72", "64-72", "6４72", "abcd", None])  # noqa: RUF001
def test_region_code_with_non_digits_is_rejected(value):
    with pytest.raises(IdentityError):
        parse_region_code(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("00", "province part must be 11 to 99"),
        ("10", "province part must be 11 to 99"),
        ("0072", "province part must be 11 to 99"),
        ("6400", "regency part must not be 00"),
        ("64.00.01", "regency part must not be 00"),
        ("647200", "district part must not be 00"),
        ("64.72.00.1001", "district part must not be 00"),
        ("6472010000", "village part must start with 1 (kelurahan), 2 (desa) or 3 (desa adat)"),
        ("6472019001", "village part must start with 1 (kelurahan), 2 (desa) or 3 (desa adat)"),
    ],
)
def test_region_code_with_zero_or_out_of_range_part_is_rejected(value, problem):
    with pytest.raises(IdentityError) as caught:
        parse_region_code(value)

    assert caught.value.message == f"region_code {problem}"


@pytest.mark.parametrize(
    ("value", "level", "message"),
    [
        ("6472", "village", "village_code must be a 10-digit village code such as 64.72.01.1001"),
        (
            "64.72.01",
            "village",
            "village_code must be a 10-digit village code such as 64.72.01.1001",
        ),
        ("6472011001", "district", "village_code must be a 6-digit district code such as 64.72.01"),
        ("64", "regency", "village_code must be a 4-digit regency or city code such as 64.72"),
        ("6472", "province", "village_code must be a 2-digit province code such as 64"),
        (
            "64.72.1001",
            "village",
            "village_code must be a 10-digit village code such as 64.72.01.1001",
        ),
        ("abc", "village", "village_code must be a 10-digit village code such as 64.72.01.1001"),
    ],
)
def test_region_code_of_another_level_than_required_is_rejected(value, level, message):
    with pytest.raises(IdentityError) as caught:
        parse_region_code(value, field="village_code", level=level)

    assert (caught.value.field, caught.value.message) == ("village_code", message)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("64", "province"),
        ("64.72", "regency"),
        ("647201", "district"),
        ("64.72.01.2001", "village"),
    ],
)
def test_region_code_of_the_required_level_is_accepted(value, level):
    assert parse_region_code(value, level=level).level == level


def test_region_code_structure_is_checked_even_with_the_right_level():
    with pytest.raises(IdentityError, match="village part"):
        parse_region_code("6472014001", level="village")


def test_unknown_level_is_a_programming_error_not_an_identity_error():
    with pytest.raises(ValueError, match="unknown region level") as caught:
        parse_region_code("64", level="kecamatan")

    assert not isinstance(caught.value, IdentityError)


@pytest.mark.parametrize(
    ("code", "level"),
    [("6472", "village"), ("64.72", "regency"), ("0072", "regency"), ("6472014001", "village")],
)
def test_region_code_built_directly_must_still_be_consistent(code, level):
    with pytest.raises(IdentityError):
        RegionCode(code=code, level=level)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", True),
        ("64", True),
        ("6472", True),
        ("647201", True),
        ("6472011001", True),
        ("64.72", False),
        ("647", False),
        ("00", False),
        ("6400", False),
        ("6472014001", False),
        ("9103013007", True),
        (" 64", False),
        (None, False),
    ],
)
def test_is_region_prefix_accepts_empty_or_plain_valid_codes(value, expected):
    assert is_region_prefix(value) is expected
