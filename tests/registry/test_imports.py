"""Bulk imports: files checked at upload, groups written by the real worker, re-runs harmless."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta

import openpyxl
import pytest
from sqlalchemy import text, update

from registry_factories import make_nik, member_payload
from support import outbox_events, wait_until

IMPORTS = "/api/v1/imports"
COLUMNS = [
    "group_name",
    "village_code",
    "business_type",
    "nik",
    "kk_number",
    "name",
    "phone",
    "role",
]
ROLES = ("ketua", "sekretaris", "bendahara", "anggota", "anggota")


def member_row(
    group_name: str, role: str = "anggota", village: str = "6472011001", **fields
) -> dict:
    return {
        "group_name": group_name,
        "village_code": village,
        "business_type": "tempe",
        **member_payload(role=role),
        **fields,
    }


def group_rows(group_name: str, **fields) -> list[dict]:
    """The rows of a complete group: three officers and two anggota."""
    return [member_row(group_name, role=role, **fields) for role in ROLES]


def csv_file(rows: list[dict], columns: list[str] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def upload(clients, officer):
    def post(content: bytes, filename: str = "groups.csv", headers: dict | None = None):
        return clients["registry"].post(
            IMPORTS,
            headers=headers or officer,
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(content), filename)},
        )

    return post


@pytest.fixture
def finished(clients, officer, workers):
    """The import a 202 answer points to, once the registry worker has finished it."""

    def wait(response) -> dict:
        assert response.status_code == 202, response.json
        url = response.headers["Location"]

        def done():
            body = clients["registry"].get(url, headers=officer).json
            return body if body["status"] in ("done", "failed") else None

        return wait_until(done, timeout=60)

    return wait


@pytest.fixture
def groups_named(clients, officer):
    def find(name: str) -> list[dict]:
        response = clients["registry"].get(
            "/api/v1/groups", query_string={"q": name}, headers=officer
        )
        assert response.status_code == 200
        return response.json["items"]

    return find


def test_good_csv_creates_every_group_with_its_members(upload, finished, groups_named, unique):
    names = [unique("KUBE Tempe"), unique("KUBE Jahit")]
    response = upload(csv_file(group_rows(names[0]) + group_rows(names[1])))
    assert response.status_code == 202
    # The rows are counted by the worker, before it writes any group.
    assert response.json["status"] == "queued" and response.json["total_rows"] == 0
    assert response.json["processed_rows"] == 0 and response.json["file_format"] == "csv"
    assert response.headers["Location"] == f"{IMPORTS}/{response.json['id']}"

    result = finished(response)
    assert result["status"] == "done", result
    assert result["groups_created"] == 2 and result["groups_rejected"] == 0
    assert result["processed_rows"] == result["total_rows"] == 10 and result["row_errors"] == []
    assert result["started_at"] and result["finished_at"]
    for name in names:
        (group,) = groups_named(name)
        assert group["status"] == "draft" and group["region_code"] == "6472011001"
        assert group["member_count"] == 5 and group["business_type"] == "tempe"
        assert set(group["officers"]) == {"ketua", "sekretaris", "bendahara"}


def test_each_imported_group_has_the_signed_event_its_stored_rows_make(
    apps, upload, finished, groups_named, unique
):
    """The import writes ids, NIKs and events in bulk: the event names exactly the group and
    members stored, as group_snapshot makes it from the rows, signed by the registry."""
    from sqlalchemy import select

    from services.registry.groups import group_snapshot
    from services.registry.models import Group, Member
    from shared.events.envelope import checked_payload
    from shared.events.signing import signed_by

    name = unique("KUBE Snapshot")
    assert finished(upload(csv_file(group_rows(name))))["groups_created"] == 1
    (listed,) = groups_named(name)
    (event,) = outbox_events(apps["registry"], listed["id"])
    context = apps["registry"].extensions["kube"]
    with context.db.transaction() as session:
        group = session.get(Group, uuid.UUID(listed["id"]))
        members = session.scalars(
            select(Member).where(Member.group_id == group.id).order_by(Member.created_at)
        ).all()
        expected = checked_payload("group.registered", {"group": group_snapshot(group, members)})
    assert event["type"] == "group.registered" and event["payload"] == expected
    assert [m["role"] for m in expected["group"]["members"]] == list(ROLES)
    assert signed_by(event, (context.outbox.signing_key,))


def test_the_same_file_imported_again_duplicates_nothing(upload, finished, groups_named, unique):
    names = [unique(), unique()]
    content = csv_file(group_rows(names[0]) + group_rows(names[1]))
    assert finished(upload(content))["groups_created"] == 2

    again = finished(upload(content))
    assert again["status"] == "done"
    assert again["groups_unchanged"] == 2 and again["groups_created"] == 0
    assert again["row_errors"] == [] and again["processed_rows"] == 10
    for name in names:
        (group,) = groups_named(name)
        assert group["member_count"] == 5


def test_group_with_a_bad_row_is_rejected_whole_and_the_others_are_created(
    upload, finished, groups_named, unique
):
    bad, good = unique("KUBE Bad"), unique("KUBE Good")
    rows = group_rows(bad) + group_rows(good)
    rows[2]["nik"] = "6472011203850000"  # serial 0000; data row 3 is spreadsheet row 4
    result = finished(upload(csv_file(rows)))

    assert result["status"] == "done"
    assert result["groups_created"] == 1 and result["groups_rejected"] == 1
    (error,) = result["row_errors"]
    assert error["row"] == 4 and error["field"] == "nik" and error["group"] == bad
    assert "serial" in error["message"]
    assert groups_named(bad) == []
    assert groups_named(good)[0]["member_count"] == 5


def test_every_bad_field_of_every_row_is_reported(upload, finished, unique):
    name = unique()
    rows = group_rows(name)
    rows[1].update(phone="021-555-1234", kk_number="x")
    rows[3]["business_type"] = "ternak"  # disagrees with row 2
    result = finished(upload(csv_file(rows)))

    assert result["groups_rejected"] == 1
    assert {(e["row"], e["field"]) for e in result["row_errors"]} == {
        (3, "phone"),
        (3, "kk_number"),
        (5, "business_type"),
    }


def test_a_nik_on_two_rows_of_the_file_is_a_row_error(upload, finished, groups_named, unique):
    first, second = unique(), unique()
    rows = group_rows(first) + group_rows(second)
    rows[7]["nik"] = rows[1]["nik"]  # row 9 repeats the NIK of row 3
    result = finished(upload(csv_file(rows)))

    assert result["groups_created"] == 1 and result["groups_rejected"] == 1
    (error,) = result["row_errors"]
    assert (error["row"], error["field"], error["group"]) == (9, "nik", second)
    assert "also on row 3" in error["message"]
    assert groups_named(first)[0]["member_count"] == 5 and groups_named(second) == []


def test_nik_already_in_an_active_group_rejects_the_group(
    upload, finished, groups_named, make_group, add_member, unique
):
    nik = make_nik()
    assert add_member(make_group()["id"], nik=nik).status_code == 201
    name = unique()
    rows = group_rows(name)
    rows[1]["nik"] = nik
    result = finished(upload(csv_file(rows)))

    assert result["groups_rejected"] == 1 and result["groups_created"] == 0
    (error,) = result["row_errors"]
    assert error["row"] == 3 and error["field"] == "nik"
    assert "already a member of the active group" in error["message"]
    assert nik not in str(result)
    assert groups_named(name) == []


def test_a_second_ketua_rolls_back_the_whole_group(upload, finished, groups_named, unique):
    name = unique()
    rows = group_rows(name)
    rows[3]["role"] = "Ketua"  # role is case-insensitive; this is a second ketua
    result = finished(upload(csv_file(rows)))

    assert result["groups_rejected"] == 1
    (error,) = result["row_errors"]
    assert error["row"] == 5 and error["field"] == "role"
    assert groups_named(name) == []  # the group and its first members were rolled back


def test_village_outside_the_uploaders_region_is_a_row_error(
    upload, finished, groups_named, unique
):
    name = unique()
    result = finished(upload(csv_file(group_rows(name, village="64.71.01.1001"))))

    assert result["groups_rejected"] == 1
    (error,) = result["row_errors"]
    assert error["row"] == 2 and error["field"] == "village_code"
    assert "outside your region" in error["message"]
    assert groups_named(name) == []


def test_xlsx_with_numbers_and_dates_in_cells(
    clients, officer, upload, finished, groups_named, unique
):
    name = unique("KUBE Excel")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "Group Name",
            "Village_Code",
            "NIK",
            "KK_Number",
            "Name",
            "Phone",
            "Role",
            "Birth_Date",
            "Founded_On",
        ]
    )
    niks = [make_nik(gender="F") for _ in ROLES]
    for role, nik in zip(ROLES, niks, strict=True):
        # As typed into Excel: identity numbers, the phone and the village become numbers.
        sheet.append(
            [
                name,
                6472011001,
                int(nik),
                6472010000000000 + int(nik[-4:]),
                "Siti Aminah",
                81234567890,
                role.title(),
                date(1985, 3, 12),
                date(2024, 1, 15),
            ]
        )
    sheet.append([])  # a blank row is skipped, not an error
    content = io.BytesIO()
    workbook.save(content)

    response = upload(content.getvalue(), filename="groups.xlsx")
    # A workbook is read whole by the worker, within its limits; it counts the rows then.
    assert response.json["file_format"] == "xlsx" and response.json["total_rows"] == 0
    result = finished(response)
    assert result["status"] == "done" and result["groups_created"] == 1, result
    assert result["total_rows"] == 5
    (group,) = groups_named(name)
    page = clients["registry"].get(f"/api/v1/groups/{group['id']}/members", headers=officer).json
    members = page["items"]
    assert len(members) == page["total"] == 5
    assert {m["phone"] for m in members} == {"+6281234567890"}
    assert {m["gender"] for m in members} == {"F"}
    assert {m["birth_date"] for m in members} == {"1985-03-12"}
    assert {m["nik"] for m in members} == {n[:4] + "********" + n[-4:] for n in niks}


@pytest.mark.parametrize(
    ("content", "byte"),
    [
        (b"\xff\xfe" + ",".join(COLUMNS).encode("utf-16-le"), "0xff"),
        (",".join(COLUMNS).encode() + "\nKelompok Bébé,".encode("latin-1"), "0xe9"),
    ],
    ids=["utf-16", "latin-1"],
)
def test_file_that_is_not_utf8_is_422_at_upload(upload, content, byte):
    response = upload(content)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    (error,) = response.json["errors"]
    assert error["field"] == "file"
    assert "not UTF-8" in error["message"] and byte in error["message"]


def test_missing_columns_are_named_at_upload(upload):
    header = [c for c in COLUMNS if c not in ("kk_number", "phone")]
    response = upload(csv_file([member_row("KUBE X")], columns=header))
    assert response.status_code == 422
    (error,) = response.json["errors"]
    assert error["field"] == "file"
    assert "kk_number, phone" in error["message"]


@pytest.mark.parametrize(
    ("content", "filename", "says"),
    [
        (b"", "groups.csv", "empty"),
        (b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\r\n\r\n", "groups.csv", "no data rows"),
        (b"PK\x03\x04not really a workbook", "groups.xlsx", "not a readable XLSX"),
        (b"\xd0\xcf\x11\xe0legacy", "groups.xls", ".xls"),
        (b"name\nx\n", "groups.txt", "only .csv and .xlsx"),
    ],
    ids=["empty", "header-only", "broken-xlsx", "xls", "txt"],
)
def test_unusable_file_is_422_naming_the_file(upload, content, filename, says):
    response = upload(content, filename=filename)
    assert response.status_code == 422
    (error,) = response.json["errors"]
    assert error["field"] == "file" and says in error["message"]


def test_upload_without_a_file_is_422(clients, officer):
    response = clients["registry"].post(
        IMPORTS, headers=officer, content_type="multipart/form-data", data={"other": "x"}
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "file"


def test_upload_above_the_import_limit_is_413(apps, upload, monkeypatch):
    # The limit is a setting (KUBE_MAX_IMPORT_BYTES, 200 MiB); set low here, not uploaded.
    limits = apps["registry"].config["KUBE_STREAMED_UPLOAD_LIMITS"]
    monkeypatch.setitem(limits, "imports.Imports", 2**20)
    response = upload(csv_file(group_rows("KUBE X")) + b" " * 2**20)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert "1048576 bytes" in response.json["detail"]


def test_a_chunked_upload_above_the_import_limit_is_413_while_it_streams(
    apps, clients, officer, monkeypatch
):
    # No Content-Length (Transfer-Encoding: chunked, as a proxy may send it): the limit holds
    # while the body is read, not only against a declared length.
    limits = apps["registry"].config["KUBE_STREAMED_UPLOAD_LIMITS"]
    monkeypatch.setitem(limits, "imports.Imports", 2**20)
    boundary = "kube-chunked-test"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="groups.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body += csv_file(group_rows("KUBE X")) + b" " * 2**21 + f"\r\n--{boundary}--\r\n".encode()
    response = clients["registry"].post(
        IMPORTS,
        headers=officer,
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        # werkzeug's test client counts the stream; chunked makes the server ignore that.
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_a_file_above_the_old_20_mib_ceiling_is_streamed_stored_and_imported(
    upload, finished, groups_named, unique
):
    first, last = unique("KUBE Awal"), unique("KUBE Akhir")
    # 100,000 blank rows of spaces (skipped, as in any file) between two groups: 21 MiB that
    # stream through the upload, the stored chunks and the worker's temporary file.
    padding = (b" " * 220 + b"\r\n") * 100_000
    head, tail = csv_file(group_rows(first)), csv_file(group_rows(last)).split(b"\r\n", 1)[1]
    content = head + padding + tail
    assert len(content) > 21 * 2**20
    response = upload(content)
    assert response.status_code == 202, response.json
    result = finished(response)
    assert result["status"] == "done", result
    assert result["groups_created"] == 2 and result["total_rows"] == 10
    assert result["processed_rows"] == 10 and result["row_errors"] == []
    assert groups_named(first)[0]["member_count"] == groups_named(last)[0]["member_count"] == 5


def test_the_stored_chunks_of_an_upload_are_not_plaintext(apps, upload, finished, unique):
    from services.registry.import_run import decrypted_file

    rows = group_rows(unique())
    content = csv_file(rows)
    response = upload(content)
    assert response.status_code == 202
    db = apps["registry"].extensions["kube"].db
    with db.transaction() as session:
        stored = session.scalars(
            text("SELECT content_encrypted FROM import_chunks WHERE import_id = :id ORDER BY seq"),
            {"id": response.json["id"]},
        ).all()
        legacy = session.scalar(
            text("SELECT content_encrypted FROM imports WHERE id = :id"),
            {"id": response.json["id"]},
        )
    assert stored and legacy == b""
    dump = b"".join(stored)
    assert dump.startswith(b"\x05test1")  # under the current data key
    for row in rows:
        for secret in (row["nik"], row["kk_number"], row["name"]):
            assert secret.encode() not in dump
    with decrypted_file(db, uuid.UUID(response.json["id"]), "csv") as path:
        assert path.read_bytes() == content
    finished(response)


def test_upload_above_the_json_body_limit_is_still_read(upload):
    # 3 MB is over the 2 MB JSON limit but within the upload limit: the file itself is checked.
    padding = "\n".join(["x,y"] * 1_000_000).encode()
    response = upload(b"group_name,village_code\n" + padding)
    assert response.status_code == 422
    assert "nik" in response.json["errors"][0]["message"]


def test_without_a_token_is_401(clients):
    assert clients["registry"].get(IMPORTS).status_code == 401
    response = clients["registry"].post(
        IMPORTS,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(csv_file([member_row("KUBE X")])), "groups.csv")},
    )
    assert response.status_code == 401


def test_auditor_cannot_upload(upload, auth):
    response = upload(csv_file([member_row("KUBE X")]), headers=auth("auditor", region="6472"))
    assert response.status_code == 403


def test_imports_are_seen_only_within_the_uploaders_region(clients, upload, auth, unique):
    response = upload(csv_file([member_row(unique())]))
    assert response.status_code == 202
    url, import_id = response.headers["Location"], response.json["id"]
    admin_import = upload(csv_file([member_row(unique())]), headers=auth("admin")).json["id"]

    def listed(headers: dict) -> set[str]:
        page = clients["registry"].get(IMPORTS, query_string={"page_size": 100}, headers=headers)
        assert page.status_code == 200
        return {item["id"] for item in page.json["items"]}

    elsewhere = auth("pendamping", region="6471")
    assert clients["registry"].get(url, headers=elsewhere).status_code == 404
    assert import_id not in listed(elsewhere)
    assert clients["registry"].get(url, headers=auth("verifikator", region="64")).status_code == 200
    own_region = listed(auth("verifikator", region="6472"))
    assert import_id in own_region and admin_import not in own_region
    assert {import_id, admin_import} <= listed(auth("admin"))


def test_a_finished_import_run_again_changes_nothing(
    apps, clients, officer, upload, finished, unique
):
    from services.registry.groups import Rules
    from services.registry.import_run import process_import

    result = finished(upload(csv_file(group_rows(unique()))))
    assert result["groups_created"] == 1
    context = apps["registry"].extensions["kube"]
    # The worker's run let go of the import's lock, so this run really looks at the import.
    key = uuid.UUID(result["id"]).int >> 65
    with context.db.transaction() as session:
        held = session.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = :high AND objid = :low"
            ),
            {"high": key >> 32, "low": key & 0xFFFFFFFF},
        ).scalar()
    assert held == 0
    # What a redelivered message does: the import is done, so nothing happens.
    process_import(context.db, context.outbox, uuid.UUID(result["id"]), Rules())
    again = clients["registry"].get(f"{IMPORTS}/{result['id']}", headers=officer).json
    assert again == result


def test_an_import_the_api_could_not_send_is_accepted_and_sent_again_later(
    apps, clients, officer, upload, monkeypatch, workers, groups_named, unique
):
    from services.registry import tasks
    from services.registry.api import imports as imports_api
    from services.registry.models import Import
    from shared.service import serve_tasks

    def redis_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    name = unique()
    monkeypatch.setattr(imports_api, "enqueue_import", redis_down)
    response = upload(csv_file(group_rows(name)))
    monkeypatch.undo()
    assert response.status_code == 202 and response.json["status"] == "queued"
    import_id = response.json["id"]

    app = apps["registry"]
    with app.extensions["kube"].db.transaction() as session:
        session.execute(
            update(Import)
            .where(Import.id == uuid.UUID(import_id))
            .values(created_at=Import.created_at - timedelta(minutes=2))
        )
    # Run the periodic task here, with this process's registry context, as the worker would.
    serve_tasks(app.extensions["kube"])
    assert tasks.requeue_stalled_imports.run() >= 1

    def done():
        body = clients["registry"].get(f"{IMPORTS}/{import_id}", headers=officer).json
        return body if body["status"] == "done" else None

    assert wait_until(done, timeout=60)["groups_created"] == 1
    assert groups_named(name)[0]["member_count"] == 5


def _workbook_bytes(workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _with_sheet_xml(content: bytes, sheet_xml: bytes) -> bytes:
    """The workbook `content` with its first sheet's XML replaced."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml
            target.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _header_workbook() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(COLUMNS)
    return _workbook_bytes(workbook)


def test_a_workbook_declaring_a_far_away_row_is_refused_quickly(upload, finished):
    import time

    header = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for i, name in enumerate(COLUMNS)
    )
    far = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<sheetData><row r="1">{header}</row>'
        '<row r="20000000"><c r="A20000000" t="inlineStr"><is><t>x</t></is></c></row>'
        "</sheetData></worksheet>"
    ).encode()
    started = time.monotonic()
    result = finished(upload(_with_sheet_xml(_header_workbook(), far), "bom.xlsx"))
    assert result["status"] == "failed"
    assert "more than 250,000 data rows" in result["error"]
    assert time.monotonic() - started < 30


def test_a_workbook_that_unpacks_far_beyond_its_size_is_refused(upload):
    bomb = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>" + b" " * (50 * 2**20) + b"</sheetData></worksheet>"
    )
    content = _with_sheet_xml(_header_workbook(), bomb)
    assert len(content) < 2**20  # a small upload...
    response = upload(content, "bomb.xlsx")
    assert response.status_code == 422  # ...that would unpack to 50 MiB of one part
    assert "compressed" in response.json["errors"][0]["message"]


def test_raw_files_of_finished_imports_are_purged_after_their_retention(
    apps, upload, finished, unique
):
    from services.registry.imports import purge_import_files
    from services.registry.models import Import

    result = finished(upload(csv_file(group_rows(unique()))))
    db = apps["registry"].extensions["kube"].db
    assert purge_import_files(db, kept_for=timedelta(days=7)) == 0  # still within its days
    with db.transaction() as session:
        session.execute(
            update(Import)
            .where(Import.id == uuid.UUID(result["id"]))
            .values(finished_at=Import.finished_at - timedelta(days=8))
        )
    assert purge_import_files(db, kept_for=timedelta(days=7)) == 1
    with db.transaction() as session:
        job = session.get(Import, uuid.UUID(result["id"]))
        assert job.content == b"" and job.groups_created == 1
        chunks = session.scalar(
            text("SELECT count(*) FROM import_chunks WHERE import_id = :id"), {"id": job.id}
        )
        assert chunks == 0
    assert purge_import_files(db, kept_for=timedelta(days=7)) == 0


def test_a_workbook_with_a_header_only_fails_in_the_worker_saying_why(upload, finished):
    response = upload(_header_workbook(), "empty.xlsx")
    assert response.status_code == 202
    result = finished(response)
    assert result["status"] == "failed"
    assert result["error"] == "The file cannot be imported: the file has a header but no data rows."


def test_a_workbook_is_parsed_in_the_worker_which_reports_its_bad_row(
    upload, finished, groups_named, unique
):
    bad, good = unique("KUBE Excel Bad"), unique("KUBE Excel Good")
    rows = group_rows(bad) + group_rows(good)
    rows[3]["phone"] = "021-555-1234"  # data row 4 is spreadsheet row 5
    workbook = openpyxl.Workbook()
    workbook.active.append(COLUMNS)
    for row in rows:
        workbook.active.append([row[column] for column in COLUMNS])
    response = upload(_workbook_bytes(workbook), "groups.xlsx")
    assert response.status_code == 202 and response.json["total_rows"] == 0
    result = finished(response)
    assert result["status"] == "done" and result["total_rows"] == 10, result
    assert result["groups_created"] == 1 and result["groups_rejected"] == 1
    (error,) = result["row_errors"]
    assert (error["row"], error["field"], error["group"]) == (5, "phone", bad)
    assert groups_named(bad) == [] and groups_named(good)[0]["member_count"] == 5


def test_a_workbook_missing_columns_is_accepted_and_failed_by_the_worker(upload, finished):
    workbook = openpyxl.Workbook()
    workbook.active.append([c for c in COLUMNS if c != "phone"])
    workbook.active.append(["x"] * (len(COLUMNS) - 1))
    response = upload(_workbook_bytes(workbook), "groups.xlsx")
    assert response.status_code == 202
    result = finished(response)
    assert result["status"] == "failed" and "phone" in result["error"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_a_character_split_across_chunks_is_read_as_utf8(size):
    from services.registry.spreadsheet import UploadCheck

    content = "\ufeff".encode() + ",".join(COLUMNS).encode() + "\nKelompok Bébé,".encode() * 500
    check = UploadCheck("groups.csv")
    for start in range(0, len(content), size):
        check.feed(content[start : start + size])
    assert check.finish(io.BytesIO(content)) == "csv"


def test_a_bad_byte_late_in_a_large_file_is_named_at_upload(upload):
    content = csv_file(group_rows("KUBE X")) + b"a,b\n" * 600_000 + "Bébé".encode("latin-1")
    response = upload(content)
    assert response.status_code == 422
    message = response.json["errors"][0]["message"]
    assert "not UTF-8" in message and "0xe9" in message and "row 600007" in message


def test_an_import_stored_before_import_chunks_is_still_imported(
    apps, clients, officer, groups_named, unique
):
    # Migration 0007 left older imports' files whole in imports.content_encrypted.
    from services.registry.groups import Rules
    from services.registry.import_run import process_import
    from services.registry.models import IMPORT_FILE_PURPOSE, Import
    from shared.encryption import data_keys

    name = unique("KUBE Lama")
    context = apps["registry"].extensions["kube"]
    with context.db.transaction() as session:
        stored = Import(
            filename="lama.csv",
            file_format="csv",
            status="queued",
            region_scope="6472",
            created_by="tester",
            content_encrypted=data_keys().encrypt(
                csv_file(group_rows(name)), purpose=IMPORT_FILE_PURPOSE
            ),
        )
        session.add(stored)
        session.flush()
        import_id = stored.id
    process_import(context.db, context.outbox, import_id, Rules())
    result = clients["registry"].get(f"{IMPORTS}/{import_id}", headers=officer).json
    assert (result["status"], result["groups_created"], result["total_rows"]) == ("done", 1, 5)
    assert len(groups_named(name)) == 1
