"""A lifecycle's definition, checked: what one hands to ``transitions.Machine``, normalised.

``transitions`` silently adds a state it has not heard of, and takes a ``None`` dest for
an internal transition; :func:`normalize` checks names first and refuses both, so that
:func:`build` hands ``transitions`` a definition that means exactly one graph. The
tagged machine it builds gives each state its ``tags`` (:func:`check_tags` checks
cardflow's own vocabulary of them).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn, TypeVar

from transitions import Machine, State
from transitions.extensions.states import Tags

from cardflow._errors import LifecycleError

__all__ = [
    "CARRIED_FIELDS",
    "OPERATION_STATUSES",
    "Definition",
    "TaggedMachine",
    "build",
    "check_tags",
    "fail",
    "normalize",
    "state_name",
]

_M = TypeVar("_M", bound=Machine)

_TRANSITION_FIELDS = (
    "trigger",
    "source",
    "dest",
    "conditions",
    "unless",
    "before",
    "after",
    "prepare",
)


def fail(message: str) -> NoReturn:
    """Refuse a definition: raise :class:`LifecycleError` with ``message``."""
    raise LifecycleError(message)


def state_name(state: object, where: str) -> str:
    """The status string a state definition stands for (Enum members stand for their value)."""
    if isinstance(state, Mapping):
        if "name" not in state:
            fail(f"{where}: state definition without a 'name': {state!r}")
        return state_name(state["name"], where)
    if isinstance(state, State):
        return state.name
    if isinstance(state, enum.Enum):
        state = state.value
    if not isinstance(state, str) or not state:
        fail(f"{where}: a state must be a non-empty string, got {state!r}")
    return state


class Definition(NamedTuple):
    """States ``(name, ((key, value), ...))`` and transitions ``(trigger, sources, dest,
    ((key, value), ...))`` with every name checked and written as the status string."""

    states: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    transitions: tuple[tuple[str, tuple[str, ...], str, tuple[tuple[str, Any], ...]], ...]


def normalize(
    states: Sequence[str | enum.Enum | Mapping[str, Any]],
    transitions: Sequence[Mapping[str, Any] | Sequence[Any]],
    initial: object,
) -> tuple[Definition, str]:
    """Check names before ``transitions`` sees them (it silently adds unknown states)."""
    if isinstance(states, str | bytes) or not isinstance(states, Sequence):
        fail(f"states must be a sequence of state definitions, got {states!r}")
    names: list[str] = []
    state_defs = []
    for state in states:
        name = state_name(state, "states")
        if name in names:
            fail(f"duplicate state {name!r}")
        names.append(name)
        extra: tuple[tuple[str, Any], ...] = ()
        if isinstance(state, Mapping):
            extra = tuple((k, v) for k, v in state.items() if k != "name")
        state_defs.append((name, extra))
    known = set(names)

    if initial is None or initial == "":
        fail("missing initial state")
    if isinstance(initial, Sequence) and not isinstance(initial, str):
        starts = [state_name(s, "initial") for s in initial]
        if len(starts) != 1:
            fail(f"more than one initial state: {', '.join(starts) or '(none)'}")
        initial = starts[0]
    initial_name = state_name(initial, "initial")
    if initial_name not in known:
        fail(f"initial state {initial_name!r} is not one of the states")

    transition_defs = []
    for spec in transitions:
        if isinstance(spec, Mapping):
            fields = dict(spec)
        elif isinstance(spec, Sequence) and 3 <= len(spec) <= len(_TRANSITION_FIELDS):
            fields = dict(zip(_TRANSITION_FIELDS, spec, strict=False))
        else:
            fail(f"transition {spec!r}: expected a dict or [trigger, source, dest]")
        trigger = fields.pop("trigger", None)
        if not isinstance(trigger, str) or not trigger.isidentifier():
            fail(f"transition {spec!r}: the trigger must be an identifier, got {trigger!r}")
        source = fields.pop("source", None)
        dest = fields.pop("dest", None)
        if source == "*":
            sources = tuple(names)
        elif isinstance(source, Sequence) and not isinstance(source, str):
            sources = tuple(state_name(s, f"edge {trigger!r}") for s in source)
        else:
            sources = (state_name(source, f"edge {trigger!r}"),)
        if dest is None or dest == "=":
            fail(
                f"cycle: edge {trigger!r} from {', '.join(sources)} stays in its state "
                "(internal or reflexive transition)"
            )
        dest_name = state_name(dest, f"edge {trigger!r}")
        for name in (*sources, dest_name):
            if name not in known:
                fail(
                    f"edge {trigger!r} {' | '.join(sources)} -> {dest_name}: unknown state {name!r}"
                )
        transition_defs.append((trigger, sources, dest_name, tuple(fields.items())))
    return Definition(tuple(state_defs), tuple(transition_defs)), initial_name


class _TaggedState(Tags):
    """A state with ``tags`` (transitions' own state feature), which carry its traits."""


class TaggedMachine(Machine):
    """A machine whose states carry ``tags`` (what :class:`~cardflow.Lifecycle` builds)."""

    state_cls = _TaggedState


OPERATION_STATUSES: tuple[str, ...] = ("PENDING", "SUCCESSFUL", "FAILED")
"""D1's top-level operation statuses, which ``operation:<STATUS>`` tags name."""

CARRIED_FIELDS: tuple[str, ...] = ("due_date", "production_site", "shipment", "reason", "error")
"""What a ``carries:<field>`` tag may name: fields that events of a status carry."""


def check_tags(name: str, tags: Iterable[str]) -> frozenset[str]:
    """The traits a state's tags give it; unknown ``operation:`` or ``carries:`` are errors.

    Tags outside cardflow's vocabulary are the user's own and pass through.
    """
    out = frozenset(tags)
    for tag in out:
        kind, _, value = tag.partition(":")
        if kind == "operation" and value not in OPERATION_STATUSES:
            fail(
                f"state {name}: tag {tag!r} names no operation status"
                f" (one of {', '.join(OPERATION_STATUSES)})"
            )
        if kind == "carries" and value not in CARRIED_FIELDS:
            fail(f"state {name}: tag {tag!r} names no field (one of {', '.join(CARRIED_FIELDS)})")
    return out


def build(
    cls: type[_M],
    definition: Definition,
    initial: str,
    order: Sequence[str] | None = None,
    **kwargs: Any,
) -> _M:
    """A machine of ``cls`` from a checked definition (states in ``order`` if given)."""
    state_defs = dict(definition.states)  # name -> ((key, value), ...)
    names = list(state_defs) if order is None else list(order)
    tagged = issubclass(cls.state_cls, Tags)
    states = [
        {"name": n, **{k: v for k, v in state_defs[n] if tagged or k != "tags"}} for n in names
    ]
    transitions = [
        {"trigger": t, "source": list(src), "dest": dest, **dict(extra)}
        for t, src, dest, extra in definition.transitions
    ]
    kwargs.setdefault("model", None)
    try:
        return cls(
            states=states,
            transitions=transitions,
            initial=initial,
            auto_transitions=False,
            **kwargs,
        )
    except (ValueError, TypeError) as exc:
        raise LifecycleError(f"transitions refused the definition: {exc}") from exc
