"""The one-statement reads: a group, a region's groups, a person's memberships by NIK. Their
bodies are built without marshmallow, so each is checked to be exactly its schema's form."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from services.registry.schemas import GroupDetailSchema, GroupSchema, MembershipSchema

from registry_factories import make_nik

BANK = {"bank_name": "BRI", "account_number": "0123456789", "account_holder": "KUBE Maju"}


def in_schema_form(schema, body: dict) -> bool:
    """Whether `body` is what the schema dumps: every field, no other, each in dumped form."""
    return schema.dump(schema.load(body)) == body


@contextlib.contextmanager
def statements(apps):
    """The SQL statements the registry sends meanwhile (a test's savepoints left out), counted
    at the driver: the reads send theirs past SQLAlchemy (reads._fetch)."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def record(cursor, query, *args, **kwargs):
        statement = str(query)
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            sent.append(statement)
        return execute(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = record
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = execute


@pytest.fixture
def visited_group(clients, officer, complete_group):
    group = complete_group(bank_account=BANK)
    for day, revenue in (("2026-01-10", 1_000_000), ("2026-02-10", None), ("2026-03-10", 900)):
        body = {"visited_on": day, "topics": ["marketing"], "monthly_revenue": revenue}
        response = clients["registry"].post(
            f"/api/v1/groups/{group['id']}/visits", json=body, headers=officer
        )
        assert response.status_code == 201, response.json
    return group


def test_a_group_read_is_one_statement_in_the_detail_schemas_form(
    apps, clients, officer, visited_group, make_group
):
    other = make_group()
    later = {"visited_on": "2026-04-10", "topics": ["other"], "monthly_revenue": 7}
    assert (
        clients["registry"]
        .post(f"/api/v1/groups/{other['id']}/visits", json=later, headers=officer)
        .status_code
        == 201
    )
    with statements(apps) as sent:
        response = clients["registry"].get(f"/api/v1/groups/{visited_group['id']}", headers=officer)
    assert response.status_code == 200
    assert len(sent) == 1
    body = response.json
    assert in_schema_form(GroupDetailSchema(), body)
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert body["member_count"] == 5 and set(body["officers"]) == {
        "ketua",
        "sekretaris",
        "bendahara",
    }
    assert body["bank_account"] == BANK
    assert body["last_visit"] == {
        "visited_on": "2026-03-10",
        "topics": ["marketing"],
        "monthly_revenue": 900,
    }
    assert body["revenue_direction"] == "falling"


def test_a_new_group_reads_as_its_creation_answered(clients, officer, make_group):
    created = make_group()
    read = clients["registry"].get(f"/api/v1/groups/{created['id']}", headers=officer).json
    assert read == created
    assert read["officers"] == {} and read["bank_account"] is None and read["member_count"] == 0
    assert in_schema_form(GroupDetailSchema(), read)


def test_another_regions_group_reads_as_absent(clients, auth, make_group):
    group = make_group()
    elsewhere = clients["registry"].get(
        f"/api/v1/groups/{group['id']}", headers=auth("pendamping", region="6471")
    )
    missing = clients["registry"].get(
        "/api/v1/groups/00000000-0000-4000-8000-000000000000", headers=auth("pendamping")
    )
    assert elsewhere.status_code == missing.status_code == 404
    assert elsewhere.json["detail"] == missing.json["detail"]


def test_a_region_list_is_one_statement_and_pages_count_every_match(
    apps, clients, officer, visited_group, make_group, unique
):
    word = unique("Cari")
    for _ in range(3):
        make_group(name=f"KUBE {word}", business_type="Tempe")
    query = f"/api/v1/groups?region=647201&q={word}&business_type=TEMPE&status=draft"
    with statements(apps) as sent:
        first = clients["registry"].get(f"{query}&page_size=2", headers=officer)
    assert first.status_code == 200 and len(sent) == 1
    assert first.json["total"] == 3 and len(first.json["items"]) == 2
    for item in first.json["items"]:
        assert in_schema_form(GroupSchema(), item)
    second = clients["registry"].get(f"{query}&page_size=2&page=2", headers=officer).json
    assert second["total"] == 3 and len(second["items"]) == 1
    past = clients["registry"].get(f"{query}&page_size=2&page=5", headers=officer).json
    assert past == {"items": [], "page": 5, "page_size": 2, "total": 3}
    listed = (
        clients["registry"].get(f"/api/v1/groups?q={visited_group['name']}", headers=officer).json
    )
    (item,) = listed["items"]
    read = clients["registry"].get(f"/api/v1/groups/{item['id']}", headers=officer).json
    assert item == {k: v for k, v in read.items() if k in GroupSchema().fields}


def test_a_name_search_takes_wildcards_literally(clients, officer, make_group, unique):
    word = unique("Persen")
    make_group(name=f"KUBE {word} 100%")
    found = clients["registry"].get(f"/api/v1/groups?q={word} 100%25", headers=officer).json
    assert found["total"] == 1
    assert clients["registry"].get(f"/api/v1/groups?q={word}_", headers=officer).json["total"] == 0


def test_a_nik_lookup_is_one_statement_in_the_membership_schemas_form(
    apps, clients, auth, make_group, add_member
):
    nik = make_nik()
    first = make_group()
    assert add_member(first["id"], nik=nik, role="ketua").status_code == 201
    verifier = auth("verifikator", region="6472")
    with statements(apps) as sent:
        found = clients["registry"].get(f"/api/v1/members?nik={nik}", headers=verifier)
    assert found.status_code == 200 and len(sent) == 1
    (item,) = found.json["items"]
    assert in_schema_form(MembershipSchema(), item)
    assert item["nik"] == f"{nik[:4]}********{nik[-4:]}"
    assert item["group_name"] == first["name"] and item["removed_at"] is None
    past = clients["registry"].get(f"/api/v1/members?nik={nik}&page=3", headers=verifier).json
    assert past == {"items": [], "page": 3, "page_size": 20, "total": 1}
