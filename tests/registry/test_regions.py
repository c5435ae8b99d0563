"""The region table: reading the official CSV, loading it, the regions API and `kube regions`.

The registry database is shared by the whole run and other tests assume no region table is
loaded, so every test that loads one empties the table again afterwards.
"""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select

from kube.cli import main
from services.registry.models import Region
from services.registry.regions import (
    MAX_REPORTED_PROBLEMS,
    RegionFileError,
    RegionRow,
    check_village,
    load_regions,
    read_region_csv,
    region_table_loaded,
)

from support import SHARED_DATA

# The region table is one shared reference table, replaced by `kube regions load` through its
# own connection: these tests commit for real and empty the table before and after each.
pytestmark = pytest.mark.commits

SMALL_TABLE = """\
code,name
33,Jawa Tengah
33.74,Kota Semarang
33.74.01,Semarang Tengah
33.74.01.1001,Miroto
64,Kalimantan Timur
64.71,Kota Balikpapan
64.71.02,Balikpapan Barat
64.71.02.1003,Baru Ulu
64.72,Kota Samarinda
64.72.01,Palaran
64.72.01.1001,Rawa Makmur
64.72.01.1002,Handil Bakti
64.72.02,Samarinda Seberang
64.72.02.1001,Sungai Keledang
64.72.02.1002,Baqa
"""
OFFICIAL_TABLE = SHARED_DATA / "wilayah-2025.csv"


def problems_of(content: str | bytes) -> list[str]:
    source = io.BytesIO(content) if isinstance(content, bytes) else io.StringIO(content)
    with pytest.raises(RegionFileError) as caught:
        read_region_csv(source)
    return caught.value.problems


def codes(response) -> list[str]:
    return [item["code"] for item in response.json["items"]]


@pytest.fixture
def registry_db(apps):
    return apps["registry"].extensions["kube"].db


@pytest.fixture
def empty_regions(registry_db):
    """An empty region table before and after the test."""

    def empty():
        with registry_db.transaction() as session:
            session.execute(delete(Region))

    empty()
    yield registry_db
    empty()


@pytest.fixture
def small_table(empty_regions):
    """The 15-region SMALL_TABLE loaded, emptied again after the test."""
    load_regions(empty_regions.engine, read_region_csv(io.StringIO(SMALL_TABLE)))
    return empty_regions


# --- Reading the CSV ----------------------------------------------------------------------


def test_reader_turns_dotted_codes_into_plain_rows_with_level_and_parent():
    rows = read_region_csv(io.StringIO(SMALL_TABLE))
    assert len(rows) == 15
    assert rows[0] == RegionRow("33", "Jawa Tengah", "province", None)
    assert RegionRow("6472", "Kota Samarinda", "regency", "64") in rows
    assert RegionRow("647201", "Palaran", "district", "6472") in rows
    assert RegionRow("6472011001", "Rawa Makmur", "village", "647201") in rows


def test_reader_takes_bytes_with_a_bom_crlf_and_quoted_names_with_commas(tmp_path):
    content = "\ufeffcode,name\r\n12,Sumatera Utara\r\n12.07,Kabupaten Deli Serdang\r\n"
    content += '12.07.28,Lubuk Pakam\r\n12.07.28.1007,"Lubuk Pakam I,II"\r\n'
    path = tmp_path / "regions.csv"
    path.write_bytes(content.encode("utf-8"))
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        rows = read_region_csv(source)
        assert [row.code for row in rows] == ["12", "1207", "120728", "1207281007"]
        assert rows[-1].name == "Lubuk Pakam I,II"


def test_a_file_with_bad_rows_reports_every_bad_line_in_order():
    content = (
        "code,name\n"
        "64,Kalimantan Timur\n"
        "64.7,Broken\n"  # 3: not a code
        "64.72,Kota Samarinda\n"
        "64.72,Samarinda Again\n"  # 5: duplicate
        "\n"
        "64.72.01,\n"  # 7: empty name
        "64.71.02,Balikpapan Barat\n"  # 8: parent 64.71 missing
        "64.72.01.1001,Rawa Makmur,extra\n"  # 9: three columns
        "64.72.01.4001,Not A Village\n"  # 10: bad village part
    )
    problems = problems_of(content)
    assert [problem.split(":")[0] for problem in problems] == [
        "line 3",
        "line 5",
        "line 7",
        "line 8",
        "line 9",
        "line 10",
    ]
    assert "groups of 2, 2, 2 and 4 digits" in problems[0] and "'64.7'" in problems[0]
    assert problems[1] == "line 5: code 64.72 appears again (first on line 4)"
    assert problems[2] == "line 7: the name of 64.72.01 is empty"
    assert problems[3] == "line 8: 64.71.02 has no parent 64.71 in the file"
    assert problems[4] == "line 9: expected 2 columns (code,name), found 3"
    assert "village part must start with 1 (kelurahan), 2 (desa) or 3" in problems[5]


def test_a_row_with_a_bad_name_still_counts_as_parent_of_its_children():
    problems = problems_of("code,name\n64,\n64.72,Kota Samarinda\n")
    assert problems == ["line 2: the name of 64 is empty"]


@pytest.mark.parametrize(
    "header",
    ["kode,nama", "code", "code,name,level", "name,code", "code;name"],
)
def test_a_missing_or_renamed_header_column_is_refused(header):
    problems = problems_of(f"{header}\n64,Kalimantan Timur\n")
    assert len(problems) == 1
    assert problems[0].startswith("line 1: the header must be code,name (found ")


def test_bytes_that_are_not_utf8_are_reported_by_line():
    content = b"code,name\n64,Kalimantan Timur\n64.72,Kota \xff\xfeSamarinda\n64.71,Balik\xe9\n"
    assert problems_of(content) == [
        "line 3: not UTF-8 text (byte 0xff at column 12)",
        "line 4: not UTF-8 text (byte 0xe9 at column 12)",
    ]


def test_a_utf16_file_is_refused_as_a_whole():
    content = b"\xff\xfe" + "code,name\n64,Kalimantan Timur\n".encode("utf-16-le")
    assert problems_of(content) == ["line 1: the file is UTF-16 or UTF-32 text; save it as UTF-8"]


def test_an_empty_file_or_a_header_alone_is_refused():
    assert problems_of(b"") == [
        "line 1: the file is empty; it must start with the header code,name"
    ]
    assert problems_of("code,name\n") == ["line 2: the file holds no regions"]


def test_problems_beyond_the_first_50_are_counted_not_listed():
    content = "code,name\n" + "".join(f"99.{n:02d},Orphan {n}\n" for n in range(1, 80))
    with pytest.raises(RegionFileError) as caught:
        read_region_csv(io.StringIO(content))
    assert len(caught.value.problems) == MAX_REPORTED_PROBLEMS
    assert caught.value.total == 79
    assert caught.value.problems[0] == "line 2: 99.01 has no parent 99 in the file"


# --- Loading ------------------------------------------------------------------------------


def test_load_counts_each_level(empty_regions):
    counts = load_regions(empty_regions.engine, read_region_csv(io.StringIO(SMALL_TABLE)))
    assert counts == {
        "province": 2,
        "regency": 3,
        "district": 4,
        "village": 6,
        "total": 15,
        "changed": 15,
        "removed": 0,
    }
    with empty_regions.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(Region)) == 15
        village = session.get(Region, "6472011001")
        assert (village.name, village.level, village.parent_code) == (
            "Rawa Makmur",
            "village",
            "647201",
        )


def test_reload_renames_changed_regions_and_removes_those_no_longer_listed(small_table):
    smaller = SMALL_TABLE.replace("Baqa", "Baqa Baru").replace("64.72.01.1002,Handil Bakti\n", "")
    counts = load_regions(small_table.engine, read_region_csv(io.StringIO(smaller)))
    assert (counts["total"], counts["changed"], counts["removed"]) == (14, 1, 1)
    with small_table.sessionmaker() as session:
        assert session.get(Region, "6472011002") is None
        assert session.get(Region, "6472021002").name == "Baqa Baru"


def test_reloading_the_same_table_changes_nothing(small_table):
    counts = load_regions(small_table.engine, read_region_csv(io.StringIO(SMALL_TABLE)))
    assert (counts["total"], counts["changed"], counts["removed"]) == (15, 0, 0)


def test_load_in_a_session_is_committed_by_the_caller(empty_regions):
    rows = read_region_csv(io.StringIO(SMALL_TABLE))
    with empty_regions.sessionmaker() as session:
        load_regions(session, rows)
        session.rollback()
        assert not region_table_loaded(session)
        load_regions(session, rows)
        session.commit()
    with empty_regions.sessionmaker() as session:
        assert region_table_loaded(session)


def test_load_refuses_to_empty_the_table(small_table):
    with pytest.raises(ValueError, match="refusing to empty"):
        load_regions(small_table.engine, [])
    with small_table.sessionmaker() as session:
        assert region_table_loaded(session)


# --- Checking village codes ---------------------------------------------------------------


def test_check_village_accepts_a_loaded_village_and_names_an_unknown_one(small_table):
    with small_table.sessionmaker() as session:
        assert region_table_loaded(session)
        assert check_village(session, "6472011001") is None
        assert check_village(session, "64.72.01.1001") is None
        assert (
            check_village(session, "6472011099")
            == "region_code 6472011099 is not in the loaded region table"
        )


def test_check_village_accepts_any_valid_code_while_no_table_is_loaded(empty_regions):
    with empty_regions.sessionmaker() as session:
        assert not region_table_loaded(session)
        assert check_village(session, "6472011099") is None


def test_check_village_reports_a_structurally_bad_code(empty_regions):
    with empty_regions.sessionmaker() as session:
        assert check_village(session, "647201") == (
            "region_code must be a 10-digit village code such as 64.72.01.1001"
        )


# --- The API ------------------------------------------------------------------------------


def test_regions_without_parent_are_the_provinces(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions", headers=auth("pendamping"))
    assert response.status_code == 200
    assert codes(response) == ["33", "64"]
    assert response.json["total"] == 2
    assert response.json["items"][1] == {
        "code": "64",
        "dotted": "64",
        "name": "Kalimantan Timur",
        "level": "province",
        "parent_code": None,
    }


def test_children_of_a_province_are_its_regencies_and_cities(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions?parent=64", headers=auth("auditor"))
    assert codes(response) == ["6471", "6472"]


def test_children_of_a_city_are_its_districts_for_a_dotted_parent_too(clients, auth, small_table):
    for parent in ("6472", "64.72"):
        response = clients["registry"].get(f"/api/v1/regions?parent={parent}", headers=auth())
        assert codes(response) == ["647201", "647202"]
        assert response.json["items"][0]["dotted"] == "64.72.01"
        assert response.json["items"][0]["parent_code"] == "6472"


def test_children_are_paginated(clients, auth, small_table):
    response = clients["registry"].get(
        "/api/v1/regions?parent=647202&page=2&page_size=1", headers=auth()
    )
    assert codes(response) == ["6472021002"]
    assert (response.json["total"], response.json["page"], response.json["page_size"]) == (2, 2, 1)


@pytest.mark.parametrize("parent", ["6", "64.7", "64x", "00", "", "6472011"])
def test_a_malformed_parent_is_a_422_problem_naming_parent(clients, auth, small_table, parent):
    response = clients["registry"].get(f"/api/v1/regions?parent={parent}", headers=auth())
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [error["field"] for error in response.json["errors"]] == ["parent"]


def test_an_unknown_parent_is_a_404_once_the_table_is_loaded(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions?parent=6473", headers=auth())
    assert response.status_code == 404
    assert response.json["detail"] == "No region 64.73 in the region table."


def test_a_known_region_without_children_lists_nothing(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions?parent=6472011001", headers=auth())
    assert response.status_code == 200
    assert response.json["items"] == [] and response.json["total"] == 0


def test_listing_before_the_table_is_loaded_is_empty(clients, auth, empty_regions):
    for url in ("/api/v1/regions", "/api/v1/regions?parent=64"):
        response = clients["registry"].get(url, headers=auth())
        assert response.status_code == 200
        assert response.json["items"] == []


def test_one_region_is_read_by_its_plain_or_dotted_code(clients, auth, small_table):
    plain = clients["registry"].get("/api/v1/regions/6472011001", headers=auth("bendahara"))
    dotted = clients["registry"].get("/api/v1/regions/64.72.01.1001", headers=auth("bendahara"))
    assert plain.status_code == dotted.status_code == 200
    assert plain.json == dotted.json
    assert plain.json == {
        "code": "6472011001",
        "dotted": "64.72.01.1001",
        "name": "Rawa Makmur",
        "level": "village",
        "parent_code": "647201",
    }


def test_an_unknown_region_is_a_404_problem(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions/64.72.01.1099", headers=auth())
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"] == "No region 64.72.01.1099 in the region table."


def test_reading_a_region_before_the_table_is_loaded_is_a_404(clients, auth, empty_regions):
    response = clients["registry"].get("/api/v1/regions/64", headers=auth())
    assert response.status_code == 404
    assert response.json["detail"] == "The region table is not loaded."


def test_a_malformed_code_is_a_422_problem_naming_code(clients, auth, small_table):
    response = clients["registry"].get("/api/v1/regions/64.7", headers=auth())
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["code"]


def test_regions_need_a_token(clients, small_table):
    response = clients["registry"].get("/api/v1/regions")
    assert response.status_code == 401


# --- The command --------------------------------------------------------------------------


def test_kube_regions_load_loads_a_file_and_prints_counts(platform_env, empty_regions, tmp_path):
    path = tmp_path / "wilayah.csv"
    path.write_text(SMALL_TABLE, encoding="utf-8")
    result = CliRunner().invoke(main, ["regions", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "Loaded 15 regions: 2 provinces, 3 regencies and cities, 4 districts, 6 villages." in (
        result.stdout
    )
    assert "rows/s" in result.stdout
    with empty_regions.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(Region)) == 15


def test_kube_regions_load_prints_each_problem_and_loads_nothing(
    platform_env, empty_regions, tmp_path
):
    path = tmp_path / "wilayah.csv"
    path.write_text("code,name\n64,Kalimantan Timur\n64.7,Broken\n64.71.02,Orphan\n")
    result = CliRunner().invoke(main, ["regions", "load", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("line 3: code must be written in groups")
    assert lines[1] == "line 4: 64.71.02 has no parent 64.71 in the file"
    assert lines[2] == f"{path}: nothing loaded (2 problems)."
    with empty_regions.sessionmaker() as session:
        assert not region_table_loaded(session)


# --- The official 2025 table --------------------------------------------------------------


@pytest.fixture
def official_table():
    if not OFFICIAL_TABLE.exists():
        pytest.skip(f"{OFFICIAL_TABLE} is absent")
    return OFFICIAL_TABLE


def test_the_official_table_reads_with_every_level_counted(official_table):
    rows = read_region_csv(official_table)
    levels = [row.level for row in rows]
    assert [levels.count(level) for level in ("province", "regency", "district", "village")] == [
        38,
        514,
        7285,
        83762,
    ]


def test_the_official_table_loads_and_lists_samarindas_districts(
    official_table, empty_regions, clients, auth
):
    counts = load_regions(empty_regions.engine, read_region_csv(official_table))
    assert (counts["province"], counts["regency"], counts["district"]) == (38, 514, 7285)
    assert counts["village"] == 83762  # including the 14 desa adat (village part 3xxx)

    response = clients["registry"].get("/api/v1/regions?parent=6472&page_size=100", headers=auth())
    assert response.json["total"] == 10
    assert [item["name"] for item in response.json["items"]][:3] == [
        "Palaran",
        "Samarinda Seberang",
        "Samarinda Ulu",
    ]
    assert response.json["items"][-1] == {
        "code": "647210",
        "dotted": "64.72.10",
        "name": "Loa Janan Ilir",
        "level": "district",
        "parent_code": "6472",
    }
