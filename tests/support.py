"""Constants and helpers the tests share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
JWT_SECRET = "test-secret-" + uuid.uuid4().hex
SHARED_DATA = ROOT.parent / "shared" / "data"


def wait_until(condition: Callable[[], object], timeout: float = 30, interval: float = 0.1):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def outbox_events(app, group_id: str) -> list[dict]:
    """The events a service's outbox holds about one group, oldest first."""
    from sqlalchemy import text

    with app.extensions["kube"].db.transaction() as session:
        return list(
            session.execute(
                text(
                    "SELECT envelope FROM outbox_events "
                    "WHERE envelope->'payload'->'group'->>'group_id' = :gid ORDER BY created_at"
                ),
                {"gid": group_id},
            ).scalars()
        )


def group_snapshot(group_id, version: int, *, name="KUBE Uji", status="draft", members=()):
    """A group.* payload as the registry sends it."""
    return {
        "group": {
            "group_id": str(group_id),
            "version": version,
            "name": name,
            "region_code": "6472011001",
            "status": status,
            "business_type": "tempe",
            "member_count": len(members),
            "members": list(members),
        }
    }


def member_contact(member_id, role="anggota", phone="+6281234567890", name="Siti"):
    return {
        "member_id": str(member_id),
        "name": name,
        "role": role,
        "nik_masked": "6472********0001",
        "phone": phone,
        "email": None,
        "language": "id",
    }


def generated_client(app, package: str, directory: Path):
    """The Python client openapi-python-client generates from the app's /openapi.json, imported
    as `package` (the contract as a client developer would use it)."""
    import importlib
    import json
    import subprocess
    import sys

    document = directory / f"{package}.json"
    document.write_bytes(app.test_client().get("/openapi.json").get_data())
    config = directory / "generator.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatter needed to import it
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(directory / package),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # A warning means part of the document could not be turned into a typed client.
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(directory))


def client_of(package, app, token: str):
    """A generated client that calls `app` in this process (httpx's WSGI transport) with a
    token, raising on any status its document does not list."""
    import httpx

    return package.AuthenticatedClient(
        base_url="http://kube.test",
        token=token,
        raise_on_unexpected_status=True,
        httpx_args={"transport": httpx.WSGITransport(app=app)},
    )
