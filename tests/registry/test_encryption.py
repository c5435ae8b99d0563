"""NIK, No. KK and uploaded files are stored encrypted, found by keyed hash, and survive a
key rotation; missing or wrong keys fail clearly."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from kube.catalogue import BY_NAME
from kube.localinfra import create_database, database_url, drop_database
from services.registry.key_rotation import rotate
from services.registry.models import Member
from shared.config import load_settings, sqlalchemy_url
from shared.encryption import DataKeyError, DataKeys, data_keys, generate_key, use_data_keys
from shared.migrate import alembic_config, upgrade

from registry_factories import make_nik, member_payload
from support import DATA_KEY, LOOKUP_KEY, RUN_ID


@pytest.fixture
def registry_db(apps):
    return apps["registry"].extensions["kube"].db


@pytest.fixture
def keep_keys():
    """Tests that install other keys put this process's own back afterwards."""
    installed = data_keys()
    yield
    use_data_keys(installed)


def _all_rows_as_text(session) -> str:
    """Every row of every table of the registry's database, as PostgreSQL prints it."""
    tables = session.scalars(
        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ).all()
    return "\n".join(
        "\n".join(session.scalars(text(f'SELECT t::text FROM "{table}" t')).all())
        for table in tables
    )


def test_the_database_holds_no_plain_nik_or_kk(clients, officer, make_group, registry_db):
    group = make_group()
    nik, kk = make_nik(), "6472019876543210"
    added = clients["registry"].post(
        f"/api/v1/groups/{group['id']}/members",
        headers={**officer, "Idempotency-Key": uuid.uuid4().hex},
        json=member_payload(nik=nik, kk_number=kk, role="ketua"),
    )
    assert added.status_code == 201
    row = {**member_payload(nik=make_nik(), kk_number="6472011111111111"), "group_name": "X"}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["group_name", "village_code", *member_payload()])
    writer.writeheader()
    writer.writerow({**row, "village_code": "6472011001"})
    uploaded = clients["registry"].post(
        "/api/v1/imports",
        headers=officer,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(out.getvalue().encode()), "groups.csv")},
    )
    assert uploaded.status_code == 202, uploaded.json

    session = registry_db.session
    raw = session.execute(
        text("SELECT nik_encrypted, nik_hash, kk_encrypted, kk_hash FROM members WHERE id = :id"),
        {"id": added.json["id"]},
    ).one()
    assert len(raw.nik_hash) == len(raw.kk_hash) == 32
    assert raw.nik_encrypted.startswith(b"\x05test1")
    dump = _all_rows_as_text(session)
    for secret in (nik, kk, row["nik"], row["kk_number"]):
        assert secret not in dump and secret.encode().hex() not in dump
    # ... yet the application reads them back.
    member = session.get(Member, uuid.UUID(added.json["id"]))
    assert (member.nik, member.kk_number) == (nik, kk)


def test_after_a_rotation_lookups_and_the_one_active_group_rule_work_with_only_the_new_key(
    clients, auth, officer, make_group, add_member, registry_db, keep_keys
):
    group = make_group()
    nik = make_nik()
    member = add_member(group["id"], nik=nik, role="ketua").json
    # An uploaded file of its own, so the rotation has stored chunks to re-encrypt.
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["group_name", "village_code", *member_payload()])
    writer.writeheader()
    writer.writerow({"group_name": "KUBE Rotasi", "village_code": "6472011001", **member_payload()})
    uploaded = clients["registry"].post(
        "/api/v1/imports",
        headers=officer,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(out.getvalue().encode()), "rotasi.csv")},
    )
    assert uploaded.status_code == 202, uploaded.json
    new_key = "test2:" + generate_key()
    both = DataKeys.parse((new_key, DATA_KEY), LOOKUP_KEY)
    use_data_keys(both)  # every process lists the new key first, then rotation runs
    lines: list[str] = []
    members, files, chunks = rotate(registry_db, both, batch_size=2, report=lines.append)
    assert members.reencrypted >= 1 and members.remaining == 0 and files.remaining == 0
    assert chunks.reencrypted >= 1 and chunks.remaining == 0
    assert any("re-encrypted" in line for line in lines)
    stored = registry_db.session.scalar(
        text("SELECT nik_encrypted FROM members WHERE id = :id"), {"id": member["id"]}
    )
    assert stored.startswith(b"\x05test2")
    again, _, _ = rotate(registry_db, both)
    assert again.reencrypted == 0  # idempotent: nothing left to do

    use_data_keys(DataKeys.parse((new_key,), LOOKUP_KEY))  # the old key is gone
    verifier = auth("verifikator", region="6472")
    found = clients["registry"].post("/api/v1/members/search", json={"nik": nik}, headers=verifier)
    assert found.status_code == 200 and found.json["total"] == 1
    assert found.json["items"][0]["nik"] == nik[:4] + "********" + nik[-4:]
    full = clients["registry"].get(
        f"/api/v1/groups/{group['id']}/members/{member['id']}", headers=verifier
    )
    assert full.status_code == 200 and full.json["nik"] == nik
    taken = add_member(make_group()["id"], nik=nik)
    assert taken.status_code == 409 and taken.json["errors"][0]["field"] == "nik"


def test_a_value_under_a_wrong_or_missing_key_fails_clearly(
    add_member, make_group, registry_db, keep_keys
):
    member_id = add_member(make_group()["id"]).json["id"]
    member = registry_db.session.get(Member, uuid.UUID(member_id))
    use_data_keys(DataKeys.parse(("test1:" + generate_key(),), LOOKUP_KEY))
    with pytest.raises(DataKeyError, match="does not decrypt under data key 'test1'"):
        _ = member.nik
    use_data_keys(DataKeys.parse(("test9:" + generate_key(),), LOOKUP_KEY))
    with pytest.raises(DataKeyError, match="'test1', which is not in KUBE_DATA_KEYS"):
        _ = member.kk_number


@pytest.mark.parametrize(
    ("override", "variable"),
    [({"data_keys": ()}, "KUBE_DATA_KEYS"), ({"lookup_key": None}, "KUBE_LOOKUP_KEY")],
)
def test_the_registry_refuses_to_start_without_its_keys(platform_env, override, variable):
    from services.registry import create_app

    with pytest.raises(RuntimeError, match=f"registry: No .* key.*{variable}"):
        create_app(load_settings("registry", **override))


def test_keys_can_come_from_files(tmp_path, monkeypatch):
    (tmp_path / "data").write_text(f"{DATA_KEY}\n")
    (tmp_path / "lookup").write_text(f"{LOOKUP_KEY}\n")
    monkeypatch.setenv("KUBE_DATA_KEYS_FILE", str(tmp_path / "data"))
    monkeypatch.setenv("KUBE_LOOKUP_KEY_FILE", str(tmp_path / "lookup"))
    settings = load_settings("registry", database_url="postgresql://x@127.0.0.1/x")
    assert DataKeys.from_settings(settings).current_id == "test1"


def test_the_migration_encrypts_existing_rows_and_drops_the_plain_columns(
    postgres_server, platform_env
):
    name = f"kube_test_{RUN_ID}_migration_0006"
    create_database(postgres_server, name, exist_ok=False)
    url = database_url(postgres_server, name)
    migrations = BY_NAME["registry"].migrations
    engine = create_engine(sqlalchemy_url(url))
    nik, kk = "6472015507900003", "6472012345678901"
    try:
        upgrade(migrations, url, "0005")
        with engine.begin() as connection:
            group_id, member_id = uuid.uuid4(), uuid.uuid4()
            connection.execute(
                text(
                    "INSERT INTO groups (id, name, region_code, status, version, created_at, "
                    "updated_at) VALUES (:id, 'KUBE Lama', '6472011001', 'active', 1, now(), now())"
                ),
                {"id": group_id},
            )
            connection.execute(
                text(
                    "INSERT INTO members (id, group_id, nik, kk_number, name, gender, birth_date, "
                    "language, role, village_code, active, version, created_at, updated_at) "
                    "VALUES (:id, :group, :nik, :kk, 'Siti', 'F', '1990-07-15', 'id', 'ketua', "
                    "'6472011001', true, 1, now(), now())"
                ),
                {"id": member_id, "group": group_id, "nik": nik, "kk": kk},
            )
            connection.execute(
                text(
                    "INSERT INTO imports (id, filename, file_format, content, status, "
                    "region_scope, created_by, created_at, total_rows, processed_rows, "
                    "groups_created, groups_unchanged, groups_rejected, row_errors) VALUES "
                    "(:id, 'a.csv', 'csv', :content, 'done', '', 't', now(), 1, 1, 1, 0, 0, '[]')"
                ),
                {"id": uuid.uuid4(), "content": f"nik\n{nik}\n".encode()},
            )
        upgrade(migrations, url)
        keys = DataKeys.parse((DATA_KEY,), LOOKUP_KEY)
        with engine.begin() as connection:
            columns = set(
                connection.scalars(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name IN ('members', 'imports')"
                    )
                )
            )
            assert {"nik", "kk_number", "content"}.isdisjoint(columns)
            row = connection.execute(text("SELECT * FROM members")).one()
            assert keys.decrypt_text(row.nik_encrypted, purpose=b"members.nik") == nik
            assert keys.decrypt_text(row.kk_encrypted, purpose=b"members.kk_number") == kk
            assert row.nik_hash == keys.lookup_hash(nik, purpose=b"nik")
            content = connection.scalar(text("SELECT content_encrypted FROM imports"))
            assert keys.decrypt(content, purpose=b"imports.content") == f"nik\n{nik}\n".encode()
            index = connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_members_active_nik'")
            )
            assert "(nik_hash) WHERE active" in index
        command.downgrade(alembic_config(migrations, url), "0005")
        with engine.begin() as connection:
            assert connection.scalar(text("SELECT nik FROM members")) == nik
            assert connection.scalar(text("SELECT content FROM imports")).startswith(b"nik\n")
    finally:
        engine.dispose()
        drop_database(postgres_server, name)
