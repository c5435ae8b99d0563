"""SMS length: encoding, units and parts, by the GSM 03.38 and UCS-2 rules."""

from __future__ import annotations

import pytest

from services.notifications.sms_text import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    SmsLength,
    non_gsm7_characters,
    sms_length,
)

TEMPLATE = (
    "Yth. KUBE Maju Jaya: bantuan UEP Rp 20.000.000 telah dicairkan ke rekening BRI "
    "kelompok pada 29 November 2026. Info: Dinas Sosial Kaltim."
)


def test_the_basic_table_has_127_characters_and_no_escape():
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_an_indonesian_template_is_gsm7_in_one_part():
    assert sms_length(TEMPLATE) == SmsLength(GSM7, len(TEMPLATE), 1)


def test_an_empty_text_is_one_gsm7_part():
    assert sms_length("") == SmsLength(GSM7, 0, 1)


@pytest.mark.parametrize(
    "units, parts", [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_parts_are_160_alone_and_153_each_when_split(units, parts):
    assert sms_length("a" * units) == SmsLength(GSM7, units, parts)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_each_extension_character_counts_two(char):
    assert sms_length(char) == SmsLength(GSM7, 2, 1)


def test_extension_characters_fill_one_part_at_80():
    assert sms_length("€" * 80) == SmsLength(GSM7, 160, 1)
    assert sms_length("€" * 80 + "a") == SmsLength(GSM7, 161, 2)


def test_gsm7_basic_accents_and_greek_stay_gsm7():
    text = "àèéìòù ÄÖÑÜäöñü ÅåÆæßÉØøÇ ΔΦΓΛΩΠΨΣΘΞ ¡¿§¤£¥@$_"
    result = sms_length(text)
    assert result.encoding == GSM7
    assert result.units == len(text)


def test_an_escape_pair_never_straddles_two_parts():
    # 152 plain characters then a euro sign: the pair would take units 153 and 154, so it
    # moves whole to the second part.
    text = "a" * 152 + "€" + "a" * 152
    result = sms_length(text)
    assert result.units == 152 + 2 + 152
    assert result == SmsLength(GSM7, 306, 3)  # 152 | 2 + 151 | 1
    assert sms_length("a" * 151 + "€" + "a" * 153) == SmsLength(GSM7, 306, 2)


@pytest.mark.parametrize(
    "switch",
    [
        "\u201c",  # left curly quote
        "\u2019",  # right curly single quote, as word processors type an apostrophe
        "\u2013",  # en dash
        "\u00a0",  # no-break space
        "ç",  # only the capital cedilla is in the GSM table
        "á",
        "😀",
    ],
)
def test_one_character_outside_gsm7_switches_the_whole_text_to_ucs2(switch):
    result = sms_length(TEMPLATE + switch)
    assert result.encoding == UCS2
    assert non_gsm7_characters(TEMPLATE + switch) == [switch]


@pytest.mark.parametrize("units, parts", [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_parts_are_70_alone_and_67_each_when_split(units, parts):
    text = "\u201c" + "a" * (units - 1)
    assert sms_length(text) == SmsLength(UCS2, units, parts)


def test_in_ucs2_extension_characters_count_one():
    assert sms_length("€" * 69 + "\u2019") == SmsLength(UCS2, 70, 1)


def test_an_emoji_outside_the_bmp_counts_two_units():
    assert sms_length("😀") == SmsLength(UCS2, 2, 1)
    assert sms_length("😀" * 35) == SmsLength(UCS2, 70, 1)
    assert sms_length("😀" * 35 + "a") == SmsLength(UCS2, 71, 2)


def test_a_surrogate_pair_never_straddles_two_parts():
    # 66 units then an emoji: units 67 and 68 would split the pair, so it moves whole.
    text = "\u201c" + "a" * 65 + "😀" + "a" * 66
    assert sms_length(text) == SmsLength(UCS2, 134, 3)  # 66 | 2 + 65 | 1
    assert sms_length("\u201c" + "a" * 64 + "😀" + "a" * 67) == SmsLength(UCS2, 134, 2)


def test_non_gsm7_characters_lists_each_once_in_order():
    left, right, left_single, right_single = "\u201c", "\u201d", "\u2018", "\u2019"
    text = f"{left}Halo{right} {left_single}semua{right_single} {left}lagi{right}"
    assert non_gsm7_characters(text) == [left, right, left_single, right_single]
    assert non_gsm7_characters(TEMPLATE) == []
