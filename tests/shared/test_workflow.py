"""The workflow engine: a table of transitions applied by one function (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shared.workflow import (
    ActionNotPermitted,
    Guard,
    GuardFailure,
    GuardsFailed,
    IllegalTransition,
    Transition,
    Workflow,
)


@dataclass
class Thing:
    status: str = "draft"
    ready: bool = False
    paid: bool = False
    log: tuple = ()


def _ready(thing, _context):
    return [] if thing.ready else [GuardFailure("not ready", "belum siap", field="ready")]


def _paid(thing, _context):
    return [] if thing.paid else [GuardFailure("not paid", "belum dibayar")]


def _note(thing, context):
    thing.log = (*thing.log, context)


FLOW = Workflow(
    "thing",
    [
        Transition("draft", "submit", "submitted", frozenset({"clerk"})),
        Transition(
            "submitted",
            "approve",
            "approved",
            frozenset({"head"}),
            guards=(Guard("is_ready", _ready), Guard("is_paid", _paid)),
            effects=(_note,),
        ),
        Transition("submitted", "reject", "rejected", frozenset({"head"})),
    ],
)


def test_an_allowed_action_moves_the_state_and_runs_its_effects():
    thing = Thing(status="submitted", ready=True, paid=True)
    taken = FLOW.apply(thing, "approve", {"head"}, "ctx")
    assert (taken.target, thing.status, thing.log) == ("approved", "approved", ("ctx",))


def test_every_failed_guard_is_listed_by_its_stable_name_in_both_languages():
    thing = Thing(status="submitted")
    with pytest.raises(GuardsFailed) as raised:
        FLOW.apply(thing, "approve", {"head"})
    assert raised.value.errors == [
        {"guard": "is_ready", "field": "ready", "message": "not ready", "message_id": "belum siap"},
        {"guard": "is_paid", "message": "not paid", "message_id": "belum dibayar"},
    ]
    assert thing.status == "submitted" and thing.log == ()


def test_an_action_not_possible_from_this_state_is_illegal_and_names_the_possible_ones():
    with pytest.raises(IllegalTransition) as raised:
        FLOW.apply(Thing(status="draft"), "approve", {"head"})
    assert "possible: submit" in raised.value.detail
    assert raised.value.extra == {"status_now": "draft"}


def test_a_role_that_may_not_take_the_action_is_refused_before_the_state_is_looked_at():
    with pytest.raises(ActionNotPermitted):
        FLOW.apply(Thing(status="draft"), "approve", {"clerk"})


def test_an_unknown_action_is_illegal():
    with pytest.raises(IllegalTransition):
        FLOW.apply(Thing(), "explode", {"head"})


def test_two_transitions_for_the_same_state_and_action_are_refused():
    with pytest.raises(ValueError, match="two transitions"):
        Workflow(
            "x",
            [
                Transition("a", "go", "b", frozenset({"r"})),
                Transition("a", "go", "c", frozenset({"r"})),
            ],
        )


def test_the_table_prints_for_the_docs():
    table = FLOW.table()
    assert "| submitted | `approve` | approved | head | `is_ready`, `is_paid` |" in table
