"""The shipped approval routes: stored as shipped, and sound."""

from __future__ import annotations

from sqlalchemy import select

from services.grants.definitions import route_of, shipped_definitions, validate_definition
from services.grants.models import WorkflowDefinition


def test_the_stored_routes_are_the_shipped_files(apps):
    with apps["grants"].extensions["kube"].db.transaction() as session:
        stored = {
            (d.key, d.version): d.definition for d in session.scalars(select(WorkflowDefinition))
        }
    for definition in shipped_definitions():
        assert stored[(definition["key"], definition["version"])] == definition


def test_the_shipped_routes_are_valid_and_differ_only_by_the_recommendation():
    routes = {d["key"]: route_of(d["key"], d["version"], d) for d in shipped_definitions()}
    for definition in shipped_definitions():
        validate_definition({k: v for k, v in definition.items() if k not in ("key", "version")})
    national, regional = routes["national"].workflow, routes["regional"].workflow
    assert set(national.states) - set(regional.states) == {"recommended"}
    assert "recommend" not in regional.actions
    assert national.actions_from("verified") == ["recommend", "reject", "return"]
    assert regional.actions_from("verified") == ["approve", "reject", "return"]
