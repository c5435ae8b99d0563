"""Factories for registry tests: valid NIKs, groups and members built through the API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from registry_factories import member_payload


@pytest.fixture
def officer(auth) -> dict:
    """Headers of a pendamping working in Kota Samarinda."""
    return auth("pendamping", region="6472")


@pytest.fixture
def make_group(clients, officer, unique) -> Callable[..., dict]:
    def make(**fields) -> dict:
        body = {
            "name": unique("KUBE"),
            "region_code": "6472011001",
            "business_type": "tempe",
            **fields,
        }
        response = clients["registry"].post("/api/v1/groups", json=body, headers=officer)
        assert response.status_code == 201, response.json
        return response.json

    return make


@pytest.fixture
def add_member(clients, officer) -> Callable[..., object]:
    def add(group_id: str, **fields):
        return clients["registry"].post(
            f"/api/v1/groups/{group_id}/members", json=member_payload(**fields), headers=officer
        )

    return add


@pytest.fixture
def complete_group(make_group, add_member) -> Callable[..., dict]:
    """A draft group with a ketua, sekretaris, bendahara and `extra` anggota."""

    def make(extra: int = 2, **fields) -> dict:
        group = make_group(**fields)
        for role in ("ketua", "sekretaris", "bendahara"):
            assert add_member(group["id"], role=role).status_code == 201
        for _ in range(extra):
            assert add_member(group["id"]).status_code == 201
        return group

    return make


# Where an import's file is read, checked and prepared (services/registry/import_prepare.py).
PLACES = ("in the importing process", "in a process of its own")


@pytest.fixture(params=PLACES)
def preparing(request, monkeypatch):
    """Run the test's imports with the file prepared in each place."""
    from services.registry import import_run

    threshold = 2**62 if request.param == PLACES[0] else 0
    monkeypatch.setattr(import_run, "PROCESS_BYTES", threshold)
    return request.param
