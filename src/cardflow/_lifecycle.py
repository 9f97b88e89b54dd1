"""The production lifecycle: defined once, with ``transitions``, and read back from it.

A :class:`Lifecycle` takes what one would hand to :class:`transitions.Machine` (states,
transitions, initial state), builds that machine and reads the graph back from it.
Everything else in cardflow (the fold's precedence, final states, gap detection, test
generation, the state diagram) asks the lifecycle, so no other module lists statuses.

:data:`D1_LIFECYCLE` is the default: Thales D1 central issuance, ``PRODUCE`` operation,
``details.status`` codes. Which of its parts the D1 pages confirm and which are our
reading is recorded per status (:meth:`Lifecycle.source`) and per trigger
(:meth:`Lifecycle.trigger_source`), and shown in ``docs/state-diagram.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeVar

from transitions import Machine, State
from transitions.extensions import GraphMachine
from transitions.extensions.states import Tags

from cardflow._errors import LifecycleError

__all__ = [
    "D1_LIFECYCLE",
    "STATUS_MEANINGS",
    "Edge",
    "Lifecycle",
    "ProductionStatus",
]


class ProductionStatus(enum.StrEnum):
    """The D1 ``details.status`` codes of a ``PRODUCE`` operation, lowest precedence first.

    The declaration order is the precedence of :data:`D1_LIFECYCLE`: when notifications
    arrive out of order, the fold keeps the status that ranks highest.
    """

    CARD_PROD_REQUESTED = "CARD_PROD_REQUESTED"
    DATA_PREPARED = "DATA_PREPARED"
    CARD_PROD_READY = "CARD_PROD_READY"
    CARD_PROD_ONGOING = "CARD_PROD_ONGOING"
    CARD_PROD_EXCEPTION = "CARD_PROD_EXCEPTION"
    CARD_PROD_DONE = "CARD_PROD_DONE"
    DATA_EXCEPTION = "DATA_EXCEPTION"
    CARD_PROD_CANCELED = "CARD_PROD_CANCELED"
    CARD_SHIPPED = "CARD_SHIPPED"
    CARD_RETURNED = "CARD_RETURNED"


_S = ProductionStatus

#: What each D1 status means, in one line of our own.
STATUS_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        _S.CARD_PROD_REQUESTED: "The issuer asked D1, through its APIs, to personalize a card.",
        _S.DATA_PREPARED: "D1 processed the card data without error.",
        _S.CARD_PROD_READY: (
            "The data reached the personalization center; the card waits to be personalized."
        ),
        _S.CARD_PROD_ONGOING: "The personalization center is personalizing the card.",
        _S.CARD_PROD_EXCEPTION: (
            "Personalization ran into a problem (details.reason tells which)."
        ),
        _S.CARD_PROD_DONE: "The card is personalized and waits to be readied for shipment.",
        _S.DATA_EXCEPTION: "Processing the card data failed; the order is rejected.",
        _S.CARD_PROD_CANCELED: "The issuer canceled the personalization.",
        _S.CARD_SHIPPED: (
            "The carrier has the card: production succeeded; shipment updates may follow."
        ),
        _S.CARD_RETURNED: "The card came back to the sender.",
    }
)

_TABLE = "D1 'Track production' status table (central issuance)"
_STATUS_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                _S.CARD_PROD_REQUESTED,
                _S.DATA_PREPARED,
                _S.DATA_EXCEPTION,
                _S.CARD_PROD_READY,
                _S.CARD_PROD_ONGOING,
                _S.CARD_PROD_DONE,
                _S.CARD_SHIPPED,
                _S.CARD_PROD_CANCELED,
            ),
            _TABLE,
        ),
        _S.CARD_PROD_EXCEPTION: (
            "D1 instant issuance docs; not in the central issuance table (our reading: "
            "central issuance sends it too)"
        ),
        _S.CARD_RETURNED: (
            "D1 tracking hub (operation STANDALONE_TRACKING); not in the central issuance "
            "table (our reading: PRODUCE may carry it too)"
        ),
    }
)

_TABLE_ORDER = (
    "our reading: the order and descriptions of the status table (D1 publishes its "
    "transition diagram only as an image)"
)
_TRIGGER_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "prepare_data": (
            _TABLE_ORDER + "; the bulk notification example of 'Track production' shows "
            "the two statuses in this order"
        ),
        "reject_data": (
            "our reading: DATA_EXCEPTION is the failed outcome of data processing; the bulk "
            "notification example of 'Track production' shows DATA_PREPARED, then "
            "DATA_EXCEPTION, for one operation"
        ),
        "queue_production": _TABLE_ORDER,
        "start_personalization": _TABLE_ORDER,
        "finish_personalization": _TABLE_ORDER,
        "flag_exception": (
            "our reading: D1's diagram has exception and on-hold paths (image only); D1 "
            "names no on-hold status, so none is modelled"
        ),
        "resolve_exception": "our reading: a resolved exception ends personalization",
        "ship": _TABLE_ORDER,
        "return_to_sender": "our reading: a card can only come back after it was shipped",
        "cancel": "our reading: the issuer may cancel at any point before the card is shipped",
    }
)


_M = TypeVar("_M", bound=Machine)
_T = TypeVar("_T")

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


class Edge(NamedTuple):
    """One transition of a lifecycle: ``trigger`` moves a card from ``source`` to ``dest``."""

    trigger: str
    source: str
    dest: str


def _fail(message: str) -> NoReturn:
    raise LifecycleError(message)


def _state_name(state: object, where: str) -> str:
    """The status string a state definition stands for (Enum members stand for their value)."""
    if isinstance(state, Mapping):
        if "name" not in state:
            _fail(f"{where}: state definition without a 'name': {state!r}")
        return _state_name(state["name"], where)
    if isinstance(state, State):
        return state.name
    if isinstance(state, enum.Enum):
        state = state.value
    if not isinstance(state, str) or not state:
        _fail(f"{where}: a state must be a non-empty string, got {state!r}")
    return state


class _Definition(NamedTuple):
    states: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    transitions: tuple[tuple[str, tuple[str, ...], str, tuple[tuple[str, Any], ...]], ...]


def _normalize(
    states: Sequence[str | enum.Enum | Mapping[str, Any]],
    transitions: Sequence[Mapping[str, Any] | Sequence[Any]],
    initial: object,
) -> tuple[_Definition, str]:
    """Check names before ``transitions`` sees them (it silently adds unknown states)."""
    if isinstance(states, str | bytes) or not isinstance(states, Sequence):
        _fail(f"states must be a sequence of state definitions, got {states!r}")
    names: list[str] = []
    state_defs = []
    for state in states:
        name = _state_name(state, "states")
        if name in names:
            _fail(f"duplicate state {name!r}")
        names.append(name)
        extra: tuple[tuple[str, Any], ...] = ()
        if isinstance(state, Mapping):
            extra = tuple((k, v) for k, v in state.items() if k != "name")
        state_defs.append((name, extra))
    known = set(names)

    if initial is None or initial == "":
        _fail("missing initial state")
    if isinstance(initial, Sequence) and not isinstance(initial, str):
        starts = [_state_name(s, "initial") for s in initial]
        if len(starts) != 1:
            _fail(f"more than one initial state: {', '.join(starts) or '(none)'}")
        initial = starts[0]
    initial_name = _state_name(initial, "initial")
    if initial_name not in known:
        _fail(f"initial state {initial_name!r} is not one of the states")

    transition_defs = []
    for spec in transitions:
        if isinstance(spec, Mapping):
            fields = dict(spec)
        elif isinstance(spec, Sequence) and 3 <= len(spec) <= len(_TRANSITION_FIELDS):
            fields = dict(zip(_TRANSITION_FIELDS, spec, strict=False))
        else:
            _fail(f"transition {spec!r}: expected a dict or [trigger, source, dest]")
        trigger = fields.pop("trigger", None)
        if not isinstance(trigger, str) or not trigger.isidentifier():
            _fail(f"transition {spec!r}: the trigger must be an identifier, got {trigger!r}")
        source = fields.pop("source", None)
        dest = fields.pop("dest", None)
        if source == "*":
            sources = tuple(names)
        elif isinstance(source, Sequence) and not isinstance(source, str):
            sources = tuple(_state_name(s, f"edge {trigger!r}") for s in source)
        else:
            sources = (_state_name(source, f"edge {trigger!r}"),)
        if dest is None or dest == "=":
            _fail(
                f"cycle: edge {trigger!r} from {', '.join(sources)} stays in its state "
                "(internal or reflexive transition)"
            )
        dest_name = _state_name(dest, f"edge {trigger!r}")
        for name in (*sources, dest_name):
            if name not in known:
                _fail(
                    f"edge {trigger!r} {' | '.join(sources)} -> {dest_name}: unknown state {name!r}"
                )
        transition_defs.append((trigger, sources, dest_name, tuple(fields.items())))
    return _Definition(tuple(state_defs), tuple(transition_defs)), initial_name


def _find_cycle(statuses: Sequence[str], succ: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of the graph as a closed walk ``[a, ..., a]``, or None when it is acyclic."""
    colour = dict.fromkeys(statuses, 0)  # 0 unseen, 1 on the stack, 2 done
    for root in statuses:
        if colour[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        colour[root] = 1
        while stack:
            node, i = stack[-1]
            nexts = succ[node]
            if i == len(nexts):
                colour[node] = 2
                stack.pop()
                continue
            stack[-1] = (node, i + 1)
            child = nexts[i]
            if colour[child] == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(child) :], child]
            if colour[child] == 0:
                colour[child] = 1
                stack.append((child, 0))
    return None


class _TaggedState(Tags):
    """A state with ``tags`` (transitions' own state feature), which carry its traits."""


class _TaggedMachine(Machine):
    state_cls = _TaggedState


OPERATION_STATUSES: tuple[str, ...] = ("PENDING", "SUCCESSFUL", "FAILED")
"""D1's top-level operation statuses, which ``operation:<STATUS>`` tags name."""

CARRIED_FIELDS: tuple[str, ...] = ("due_date", "production_site", "shipment", "reason", "error")
"""What a ``carries:<field>`` tag may name: fields that events of a status carry."""


def _check_tags(name: str, tags: Iterable[str]) -> frozenset[str]:
    """The traits a state's tags give it; unknown ``operation:`` or ``carries:`` are errors.

    Tags outside cardflow's vocabulary are the user's own and pass through.
    """
    out = frozenset(tags)
    for tag in out:
        kind, _, value = tag.partition(":")
        if kind == "operation" and value not in OPERATION_STATUSES:
            _fail(
                f"state {name}: tag {tag!r} names no operation status"
                f" (one of {', '.join(OPERATION_STATUSES)})"
            )
        if kind == "carries" and value not in CARRIED_FIELDS:
            _fail(f"state {name}: tag {tag!r} names no field (one of {', '.join(CARRIED_FIELDS)})")
    return out


class Lifecycle:
    """A card production lifecycle: a DAG of statuses with one initial state and finals.

    Immutable after construction and compared by identity. Every query is answered from
    tables built once here; ``ranks`` is a plain mapping for the fold's hot path
    (``lifecycle.ranks.get(status, -1)``).

    ``states``, ``transitions`` and ``initial`` take what :class:`transitions.Machine`
    takes (state dicts may carry ``"final": True``; a transition is a dict or a
    ``[trigger, source, dest]`` list; ``"*"`` and lists are allowed as source), except
    that an Enum member stands for its *value*, the code D1 sends. ``precedence``
    orders the statuses for the fold, lowest first (default: the order of ``states``);
    every edge must go up it. ``descriptions``, ``sources`` (per status) and
    ``trigger_sources`` (per trigger) are free text for the documentation.

    A state dict may carry ``tags`` (transitions' ``Tags`` state feature), which give
    a status its traits: ``success`` (production succeeded; not final, updates may
    follow), ``operation:<PENDING|SUCCESSFUL|FAILED>`` (the top-level statuses D1 may
    send with it; none listed means any) and ``carries:<field>`` (its events carry
    ``due_date``, ``production_site``, ``shipment``, ``reason`` or ``error``; the
    fields of ``due_date`` and ``production_site`` continue on every later status).

    Raises :class:`~cardflow._errors.LifecycleError` when the definition cannot be a
    production lifecycle: unknown or duplicate states, no or several initial states,
    cycles, edges going down the precedence, final states with exits, unreachable states.
    """

    __slots__ = (
        "_definition",
        "_descriptions",
        "_edges_from",
        "_machine",
        "_memo",
        "_must_pass",
        "_reach",
        "_sources",
        "_successors",
        "_tags",
        "_trigger_sources",
        "edges",
        "finals",
        "initial",
        "name",
        "ranks",
        "statuses",
        "triggers",
    )

    name: str
    initial: str
    statuses: tuple[str, ...]
    finals: frozenset[str]
    edges: tuple[Edge, ...]
    triggers: tuple[str, ...]
    ranks: Mapping[str, int]
    _definition: _Definition
    _machine: Machine
    _reach: Mapping[str, frozenset[str]]
    _must_pass: Mapping[str, Mapping[str, frozenset[str]]]
    _edges_from: Mapping[str, tuple[Edge, ...]]
    _successors: Mapping[str, tuple[str, ...]]
    _descriptions: Mapping[str, str]
    _sources: Mapping[str, str]
    _trigger_sources: Mapping[str, str]
    _tags: Mapping[str, frozenset[str]]
    _memo: dict[str, object]

    def __init__(
        self,
        *,
        name: str,
        states: Sequence[str | enum.Enum | Mapping[str, Any]],
        transitions: Sequence[Mapping[str, Any] | Sequence[Any]],
        initial: str | enum.Enum,
        precedence: Sequence[str] | None = None,
        descriptions: Mapping[str, str] | None = None,
        sources: Mapping[str, str] | None = None,
        trigger_sources: Mapping[str, str] | None = None,
    ) -> None:
        definition, initial_name = _normalize(states, transitions, initial)
        machine = _build(_TaggedMachine, definition, initial_name)

        # The machine is the source of truth: read everything back from it.
        names = tuple(machine.states)
        finals = frozenset(n for n, s in machine.states.items() if s.final)
        tags = {n: _check_tags(n, getattr(s, "tags", ())) for n, s in machine.states.items()}
        found: dict[Edge, None] = {}
        for trigger, event in machine.events.items():
            for source, moves in event.transitions.items():
                for move in moves:
                    if move.dest is None:  # pragma: no cover - refused by _normalize
                        _fail(f"cycle: edge {trigger!r} from {source} stays in its state")
                    found[Edge(trigger, source, move.dest)] = None

        order = tuple(
            names if precedence is None else (_state_name(s, "precedence") for s in precedence)
        )
        unknown = [s for s in order if s not in machine.states]
        if unknown:
            _fail(f"precedence names unknown state(s): {', '.join(unknown)}")
        if len(set(order)) != len(order) or set(order) != set(names):
            repeated = sorted({s for s in order if order.count(s) > 1})
            missing = [s for s in names if s not in order]
            _fail(
                "precedence is not a permutation of the states: "
                f"missing {', '.join(missing) or '-'}; repeated {', '.join(repeated) or '-'}"
            )
        ranks = {s: i for i, s in enumerate(order)}

        succ: dict[str, list[str]] = {s: [] for s in order}
        for edge in found:
            if edge.dest not in succ[edge.source]:
                succ[edge.source].append(edge.dest)
        cycle = _find_cycle(order, succ)
        if cycle is not None:
            _fail(f"cycle: {' -> '.join(cycle)}")
        for edge in found:
            if ranks[edge.dest] < ranks[edge.source]:
                _fail(
                    f"edge {edge.trigger!r} {edge.source} -> {edge.dest} goes down the "
                    f"precedence (rank {ranks[edge.source]} -> {ranks[edge.dest]})"
                )
        for edge in found:
            if edge.source in finals:
                _fail(
                    f"final state {edge.source} has an exit: "
                    f"edge {edge.trigger!r} {edge.source} -> {edge.dest}"
                )

        # Reachability and must-pass sets, in reverse / forward precedence order (which
        # is a topological order, as every edge goes up).
        reach: dict[str, frozenset[str]] = {}
        for s in reversed(order):
            below: set[str] = set()
            for d in succ[s]:
                below |= reach[d] | {d}
            reach[s] = frozenset(below)
        unreachable = [s for s in order if s != initial_name and s not in reach[initial_name]]
        if unreachable:
            _fail(f"unreachable from the initial state {initial_name}: {', '.join(unreachable)}")

        preds: dict[str, list[str]] = {s: [] for s in order}
        for s in order:
            for d in succ[s]:
                preds[d].append(s)
        # must_pass[a][b]: the statuses on every path from a to b (both ends included).
        must_pass: dict[str, dict[str, frozenset[str]]] = {}
        for a in order:
            row: dict[str, frozenset[str]] = {a: frozenset((a,))}
            for b in order[ranks[a] + 1 :]:
                via = [row[p] for p in preds[b] if p in row]
                if via:
                    row[b] = frozenset.intersection(*via) | {b}
            must_pass[a] = row

        edges = tuple(sorted(found, key=lambda e: (ranks[e.source], ranks[e.dest], e.trigger)))
        edges_from = {s: tuple(e for e in edges if e.source == s) for s in order}
        successors = {s: tuple(sorted(set(succ[s]), key=ranks.__getitem__)) for s in order}

        def _texts(
            what: str, texts: Mapping[str, str] | None, keys: Iterable[str]
        ) -> Mapping[str, str]:
            allowed = set(keys)
            out = {str(k): v for k, v in (texts or {}).items()}
            stray = sorted(set(out) - allowed)
            if stray:
                _fail(f"{what} name unknown key(s): {', '.join(stray)}")
            return MappingProxyType(out)

        triggers = tuple(dict.fromkeys(e.trigger for e in found))
        init = object.__setattr__
        init(self, "name", name)
        init(self, "initial", initial_name)
        init(self, "statuses", order)
        init(self, "finals", finals)
        init(self, "edges", edges)
        init(self, "triggers", triggers)
        init(self, "ranks", ranks)
        init(self, "_definition", definition)
        init(self, "_machine", machine)
        init(self, "_reach", reach)
        init(self, "_must_pass", must_pass)
        init(self, "_edges_from", edges_from)
        init(self, "_successors", successors)
        init(self, "_descriptions", _texts("descriptions", descriptions, order))
        init(self, "_sources", _texts("sources", sources, order))
        init(self, "_trigger_sources", _texts("trigger_sources", trigger_sources, triggers))
        init(self, "_tags", MappingProxyType(tags))
        init(self, "_memo", {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Lifecycle is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Lifecycle is immutable: cannot delete {name!r}")

    def __repr__(self) -> str:
        return f"<Lifecycle {self.name!r}: {len(self.statuses)} statuses, {len(self.edges)} edges>"

    @property
    def machine(self) -> Machine:
        """The :class:`transitions.Machine` (``model=None``) this lifecycle was read from.

        Shared by every user of the lifecycle: do not add states, transitions or
        callbacks to it. Drive models with ``machine.events[trigger].trigger(model)``.
        """
        return self._machine

    def graph_machine(self, **kwargs: Any) -> GraphMachine:
        """A fresh :class:`~transitions.extensions.GraphMachine` of this lifecycle.

        States come in precedence order; ``kwargs`` go to the GraphMachine (for
        example ``graph_engine="mermaid"``, ``title=...``). The machine is its own model.
        """
        kwargs.setdefault("title", self.name)
        kwargs.setdefault("model", GraphMachine.self_literal)
        return _build(GraphMachine, self._definition, self.initial, self.statuses, **kwargs)

    def tags(self, status: str) -> frozenset[str]:
        """The tags of ``status`` in the definition (empty for an unknown status)."""
        return self._tags.get(status, frozenset())

    def operation_statuses(self, status: str) -> frozenset[str]:
        """The top-level statuses D1 may send with ``status`` (all of them if not tagged)."""
        allowed = frozenset(
            t.partition(":")[2] for t in self.tags(status) if t.startswith("operation:")
        )
        return allowed or frozenset(OPERATION_STATUSES)

    def is_success(self, status: str) -> bool:
        """Whether ``status`` means production succeeded (tag ``success``)."""
        return "success" in self.tags(status)

    def carries(self, status: str) -> frozenset[str]:
        """The fields events of ``status`` carry (from its ``carries:<field>`` tags)."""
        return frozenset(t.partition(":")[2] for t in self.tags(status) if t.startswith("carries:"))

    def memo(self, key: str, build: Callable[[Lifecycle], _T]) -> _T:
        """Tables that other modules derive from this lifecycle, built once per lifecycle.

        The lifecycle never changes, so whatever ``build`` derives from it stays true;
        keeping it here saves rebuilding it per call without any global state.
        """
        found = self._memo.get(key)
        if found is None:
            found = self._memo.setdefault(key, build(self))
        return found  # type: ignore[return-value]

    def rank(self, status: str) -> int:
        """The precedence of ``status``: 0 for the lowest, -1 for an unknown status."""
        return self.ranks.get(status, -1)

    def is_known(self, status: str) -> bool:
        """Whether ``status`` is one of this lifecycle's statuses."""
        return status in self.ranks

    def is_final(self, status: str) -> bool:
        """Whether ``status`` is final: nothing may follow it."""
        return status in self.finals

    def can_precede(self, a: str, b: str) -> bool:
        """Whether some path leads from ``a`` to a different status ``b``."""
        reach = self._reach.get(a)
        return reach is not None and b in reach

    def on_one_path(self, statuses: Iterable[str]) -> bool:
        """Whether the known ``statuses`` all lie on one path from the initial state.

        Unknown statuses are ignored. False means the statuses contradict each other:
        a card cannot have passed through all of them.
        """
        chain = sorted({s for s in statuses if s in self.ranks}, key=self.ranks.__getitem__)
        return all(b in self._reach[a] for a, b in pairwise(chain))

    def gaps(self, observed: Iterable[str], current: str) -> frozenset[str]:
        """The statuses a card in ``current`` must have passed but was not seen in.

        Among the paths from the initial state to ``current`` that pass every observed
        status able to precede ``current``, the statuses common to all of them, less
        the observed ones and ``current``. When those observed statuses do not lie on
        one path (contradicting evidence), every path to ``current`` is considered
        instead. Unknown statuses are ignored; an unknown ``current`` has no gaps.
        """
        to_current = self._must_pass[self.initial].get(current)
        if to_current is None:
            return frozenset()
        seen = {s for s in observed if s in self.ranks}
        chain = sorted((s for s in seen if current in self._reach[s]), key=self.ranks.__getitem__)
        passed: frozenset[str] = to_current
        if self.on_one_path(chain):
            passed = frozenset()
            start = self.initial
            for step in (*chain, current):
                passed |= self._must_pass[start][step]
                start = step
        return passed - seen - {current}

    def successors(self, status: str) -> tuple[str, ...]:
        """The statuses one edge away from ``status``, in precedence order."""
        return self._successors.get(status, ())

    def edges_from(self, status: str) -> tuple[Edge, ...]:
        """The edges leaving ``status``, in precedence order of their destinations."""
        return self._edges_from.get(status, ())

    def describe(self, status: str) -> str:
        """What ``status`` means, or "" when the definition does not say."""
        return self._descriptions.get(status, "")

    def source(self, status: str) -> str:
        """Where the knowledge of ``status`` comes from, or "" when not recorded."""
        return self._sources.get(status, "")

    def trigger_source(self, trigger: str) -> str:
        """Where the edges of ``trigger`` come from (a source or our reading), or ""."""
        return self._trigger_sources.get(trigger, "")


def _build(
    cls: type[_M],
    definition: _Definition,
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


def _d1_lifecycle() -> Lifecycle:
    """The default D1 central issuance lifecycle (see the module docstring)."""
    finals = {_S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED, _S.CARD_RETURNED}
    pending = ["operation:PENDING"]
    # Traits (see Lifecycle): which top-level status D1 sends with each status, and
    # which fields its events carry. The seed examples show PENDING before completion,
    # FAILED with DATA_EXCEPTION (errorCode, error) and SUCCESSFUL with CARD_SHIPPED
    # (endTime, shipment); dueDate and productionSite appear from DATA_PREPARED on. The
    # rest (exception, cancel, return) is our reading.
    tags: dict[str, list[str]] = {
        _S.CARD_PROD_REQUESTED: pending,
        _S.DATA_PREPARED: [*pending, "carries:due_date", "carries:production_site"],
        _S.CARD_PROD_READY: pending,
        _S.CARD_PROD_ONGOING: pending,
        _S.CARD_PROD_EXCEPTION: [*pending, "operation:FAILED", "carries:reason", "carries:error"],
        _S.CARD_PROD_DONE: pending,
        _S.DATA_EXCEPTION: ["operation:FAILED", "carries:reason", "carries:error"],
        _S.CARD_PROD_CANCELED: ["operation:FAILED", "operation:SUCCESSFUL"],
        _S.CARD_SHIPPED: ["operation:SUCCESSFUL", "success", "carries:shipment"],
        _S.CARD_RETURNED: ["operation:SUCCESSFUL", "carries:shipment"],
    }
    states = [{"name": s.value, "final": s in finals, "tags": tags[s]} for s in ProductionStatus]
    transitions: list[list[Any]] = [
        ["prepare_data", _S.CARD_PROD_REQUESTED, _S.DATA_PREPARED],
        ["reject_data", [_S.CARD_PROD_REQUESTED, _S.DATA_PREPARED], _S.DATA_EXCEPTION],
        ["queue_production", _S.DATA_PREPARED, _S.CARD_PROD_READY],
        ["start_personalization", _S.CARD_PROD_READY, _S.CARD_PROD_ONGOING],
        ["flag_exception", _S.CARD_PROD_ONGOING, _S.CARD_PROD_EXCEPTION],
        ["finish_personalization", _S.CARD_PROD_ONGOING, _S.CARD_PROD_DONE],
        ["resolve_exception", _S.CARD_PROD_EXCEPTION, _S.CARD_PROD_DONE],
        ["ship", _S.CARD_PROD_DONE, _S.CARD_SHIPPED],
        ["return_to_sender", _S.CARD_SHIPPED, _S.CARD_RETURNED],
        [
            "cancel",
            [
                _S.CARD_PROD_REQUESTED,
                _S.DATA_PREPARED,
                _S.CARD_PROD_READY,
                _S.CARD_PROD_ONGOING,
                _S.CARD_PROD_EXCEPTION,
                _S.CARD_PROD_DONE,
            ],
            _S.CARD_PROD_CANCELED,
        ],
    ]
    return Lifecycle(
        name="d1-central-issuance",
        states=states,
        transitions=transitions,
        initial=_S.CARD_PROD_REQUESTED,
        descriptions=STATUS_MEANINGS,
        sources=_STATUS_SOURCES,
        trigger_sources=_TRIGGER_SOURCES,
    )


#: Thales D1 central issuance, as cardflow reads it (precedence = ProductionStatus order).
D1_LIFECYCLE: Lifecycle = _d1_lifecycle()
