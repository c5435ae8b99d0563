"""Constants and helpers the tests share."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
JWT_SECRET = "test-secret-" + uuid.uuid4().hex
PROVIDER_SECRET = "callback-" + uuid.uuid4().hex
# The registry's data keys for this run (KUBE_DATA_KEYS), and its lookup key.
DATA_KEY = "test1:" + base64.b64encode(os.urandom(32)).decode()
LOOKUP_KEY = base64.b64encode(os.urandom(32)).decode()
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


class Gateway:
    """A real HTTP SMS gateway for the suite (pytest-httpserver), answering as the `userkey`
    preset's gateways do, or as a test tells it for one number: each plan step is "ok",
    an HTTP status (500, 429, 400), a float (seconds to sleep: a timeout), or "reject"."""

    def __init__(self):
        import threading

        from pytest_httpserver import HTTPServer

        self.server = HTTPServer(threaded=True)
        self.server.start()
        self.received: list[dict] = []
        # Every request, answered or refused: (monotonic time, form, HTTP status).
        self.attempts: list[tuple[float, dict, int]] = []
        self.plans: dict[str, list] = {}
        # A whole-gateway outage: (seconds, status, started at the first request or None).
        self._outage: list | None = None
        self.lock = threading.Lock()
        self.server.expect_request("/sms", method="POST").respond_with_handler(self._answer)

    @property
    def url(self) -> str:
        return self.server.url_for("/sms")

    def plan(self, national_number: str, *steps) -> None:
        with self.lock:
            self.plans[national_number] = list(steps)

    def outage(self, seconds: float, status: int = 500) -> None:
        """Answer every request with `status` for `seconds`, counted from the first request
        that arrives (so each message meets the whole outage), then answer as before."""
        with self.lock:
            self._outage = [seconds, status, None]

    def end_outage(self) -> None:
        with self.lock:
            self._outage = None

    def to(self, national_number: str) -> list[dict]:
        """What reached the gateway for one number (national form, 08...)."""
        with self.lock:
            return [r for r in self.received if r["to"] == national_number]

    def _answer(self, request):
        import json

        from werkzeug import Response

        form = request.form.to_dict()
        with self.lock:
            steps = self.plans.get(form.get("to"), [])
            step = steps.pop(0) if steps else "ok"
            if self._outage is not None:
                seconds, status, started = self._outage
                now = time.monotonic()
                if started is None:
                    self._outage[2] = started = now
                if now - started < seconds:
                    step = status
                else:
                    self._outage = None
            self.attempts.append((time.monotonic(), form, step if isinstance(step, int) else 200))
        if isinstance(step, float):
            time.sleep(step)
            step = "ok"
        if isinstance(step, int):
            return Response("gateway trouble", status=step)
        if step == "reject":
            body = {"status": "0", "text": "Nomor tidak valid"}
        else:
            with self.lock:
                self.received.append(form)
                body = {"status": "1", "messageId": f"gw-{len(self.received)}", "text": "Success"}
        return Response(json.dumps(body), mimetype="application/json")

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()


class MailServer:
    """A real SMTP server for the suite (aiosmtpd), keeping every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.received: list = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                from email import message_from_bytes

                outer.received.append(message_from_bytes(envelope.content))
                return "250 OK"

        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list:
        return [m for m in self.received if m["To"] == address]

    def stop(self) -> None:
        self.controller.stop()
