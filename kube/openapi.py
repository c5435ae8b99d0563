"""Each service's OpenAPI document as committed in docs/openapi/: the contract clients are
generated from, so a change to it is a reviewed change (`make openapi` rewrites them)."""

from __future__ import annotations

import importlib
import json
import secrets
from pathlib import Path

from kube.catalogue import NAMES
from shared.config import load_settings
from shared.encryption import generate_key

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi"


def document(service: str) -> dict:
    """The document the service serves at /openapi.json, built without any server running."""
    settings = load_settings(
        service,
        database_url="postgresql://openapi@127.0.0.1:1/never-connected",
        # Never used to sign anything: the document needs an app, not a secret.
        jwt_secret=secrets.token_urlsafe(32),
        event_signing_keys=(secrets.token_hex(32),),
        data_keys=(f"openapi:{generate_key()}",),
        lookup_key=generate_key(),
    )
    app = importlib.import_module(f"services.{service}").create_app(settings)
    try:
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec
        return json.loads(json.dumps(spec.to_dict()))
    finally:
        app.extensions["kube"].db.dispose()


def render(document: dict) -> str:
    """A document as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed_path(service: str, directory: Path = COMMITTED) -> Path:
    return directory / f"{service}.json"


def write_documents(directory: Path = COMMITTED) -> list[Path]:
    """Rewrite every service's committed document; return those that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for service in NAMES:
        path = committed_path(service, directory)
        text = render(document(service))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
