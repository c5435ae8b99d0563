"""A small workflow engine: a table of transitions and one function that applies an action.

Pure Python: no Flask, no SQL. A transition names the state it leaves, the action, the state
it reaches, the roles that may take it, the guards that must pass and the effects that follow.
Guards and effects are plain callables given the subject and a context object chosen by the
caller (a service passes its session and settings there)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Conflict, NotPermitted


@dataclass(frozen=True)
class GuardFailure:
    """Why a guard refused, in English and in Bahasa Indonesia; `field` where one is at fault."""

    message: str
    message_id: str
    field: str | None = None


@dataclass(frozen=True)
class Guard:
    """A named precondition; `check` returns the failures (an empty list when it passes)."""

    name: str
    check: Callable[[Any, Any], list[GuardFailure]]


@dataclass(frozen=True)
class Transition:
    source: str
    action: str
    target: str
    roles: frozenset[str]
    guards: tuple[Guard, ...] = ()
    effects: tuple[Callable[[Any, Any], None], ...] = ()
    description: str = ""


def guard_failures(guards: Iterable[Guard], subject: Any, context: Any) -> list[dict]:
    """Every failure of every guard, each named by its guard (the `errors` of a 409)."""
    return [
        {
            "guard": guard.name,
            **({"field": f.field} if f.field else {}),
            "message": f.message,
            "message_id": f.message_id,
        }
        for guard in guards
        for f in guard.check(subject, context)
    ]


class IllegalTransition(Conflict):
    """The action is not possible from the subject's current state."""


class GuardsFailed(Conflict):
    """The action is possible from this state, but some guards refused it."""


class ActionNotPermitted(NotPermitted):
    """None of the caller's roles may take this action."""


@dataclass
class Workflow:
    """A named table of transitions over one state attribute of its subjects."""

    name: str
    transitions: list[Transition]
    state_attribute: str = "status"
    _index: dict[tuple[str, str], Transition] = field(init=False, repr=False)

    def __post_init__(self):
        self._index = {}
        for transition in self.transitions:
            key = (transition.source, transition.action)
            if key in self._index:
                raise ValueError(f"{self.name}: two transitions for {key}")
            self._index[key] = transition

    @property
    def actions(self) -> list[str]:
        return sorted({t.action for t in self.transitions})

    @property
    def states(self) -> list[str]:
        seen: dict[str, None] = {}
        for t in self.transitions:
            seen.setdefault(t.source)
            seen.setdefault(t.target)
        return list(seen)

    def actions_from(self, state: str) -> list[str]:
        return sorted(a for (s, a) in self._index if s == state)

    def check(self, subject: Any, action: str, roles: Iterable[str]) -> Transition:
        """The transition `action` takes from the subject's state for one of `roles`, before any
        guard runs; ActionNotPermitted (role) or IllegalTransition (state) otherwise."""
        roles = set(roles)
        takers = {r for t in self.transitions if t.action == action for r in t.roles}
        if not takers:
            raise IllegalTransition(f"{self.name} has no action {action!r}.")
        if not roles & takers:
            raise ActionNotPermitted(
                f"The action {action} needs one of the roles: {', '.join(sorted(takers))}."
            )
        state = getattr(subject, self.state_attribute)
        transition = self._index.get((state, action))
        if transition is None:
            possible = self.actions_from(state)
            raise IllegalTransition(
                f"A {self.name} in state {state} cannot {action}; "
                f"possible: {', '.join(possible) or 'nothing (final state)'}.",
                status_now=state,
            )
        if not roles & transition.roles:
            raise ActionNotPermitted(
                f"From {state}, {action} needs one of the roles: "
                f"{', '.join(sorted(transition.roles))}."
            )
        return transition

    def apply(self, subject: Any, action: str, roles: Iterable[str], context: Any = None):
        """Take `action` on `subject`: check roles, state and every guard, then move the state
        and run the effects. Returns the transition taken; raises a domain error otherwise."""
        transition = self.check(subject, action, roles)
        state = getattr(subject, self.state_attribute)
        failures = guard_failures(transition.guards, subject, context)
        if failures:
            raise GuardsFailed(
                f"The {self.name} cannot {action} yet.", errors=failures, status_now=state
            )
        setattr(subject, self.state_attribute, transition.target)
        for effect in transition.effects:
            effect(subject, context)
        return transition

    def table(self) -> str:
        """The transitions as a Markdown table, for the docs."""
        lines = [
            "| from | action | to | roles | guards |",
            "|---|---|---|---|---|",
        ]
        for t in self.transitions:
            guards = ", ".join(f"`{g.name}`" for g in t.guards) or "none"
            roles = ", ".join(sorted(t.roles))
            lines.append(f"| {t.source} | `{t.action}` | {t.target} | {roles} | {guards} |")
        return "\n".join(lines)
