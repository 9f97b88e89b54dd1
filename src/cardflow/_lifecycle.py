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
from types import MappingProxyType
from typing import Any, TypeVar

from transitions import Machine
from transitions.extensions import GraphMachine

from cardflow._lifecycle_definition import (
    OPERATION_STATUSES,
    Definition,
    TaggedMachine,
    build,
    check_tags,
    fail,
    normalize,
)
from cardflow._lifecycle_graph import Edge, Graph

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


_T = TypeVar("_T")


def _texts(what: str, texts: Mapping[str, str] | None, keys: Iterable[str]) -> Mapping[str, str]:
    """Free text per status or trigger, read-only; a key that names none is an error."""
    allowed = set(keys)
    out = {str(k): v for k, v in (texts or {}).items()}
    stray = sorted(set(out) - allowed)
    if stray:
        fail(f"{what} name unknown key(s): {', '.join(stray)}")
    return MappingProxyType(out)


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
        "_arguments",
        "_definition",
        "_descriptions",
        "_graph",
        "_machine",
        "_memo",
        "_sources",
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
    _arguments: dict[str, Any]
    _definition: Definition
    _machine: Machine
    _graph: Graph
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
        definition, initial_name = normalize(states, transitions, initial)
        machine = build(TaggedMachine, definition, initial_name)
        # The machine is the source of truth: read everything back from it.
        tags = {n: check_tags(n, getattr(s, "tags", ())) for n, s in machine.states.items()}
        graph = Graph(machine, initial_name, precedence)
        init = object.__setattr__
        init(self, "name", name)
        init(self, "initial", initial_name)
        init(self, "statuses", graph.statuses)
        init(self, "finals", graph.finals)
        init(self, "edges", graph.edges)
        init(self, "triggers", graph.triggers)
        init(self, "ranks", graph.ranks)
        init(self, "_definition", definition)
        init(self, "_machine", machine)
        init(self, "_graph", graph)
        init(self, "_descriptions", _texts("descriptions", descriptions, graph.statuses))
        init(self, "_sources", _texts("sources", sources, graph.statuses))
        init(self, "_trigger_sources", _texts("trigger_sources", trigger_sources, graph.triggers))
        init(self, "_tags", MappingProxyType(tags))
        init(self, "_memo", {})
        arguments = {
            "name": name,
            "states": list(states),
            "transitions": list(transitions),
            "initial": initial,
            "precedence": precedence,
            "descriptions": descriptions,
            "sources": sources,
            "trigger_sources": trigger_sources,
        }
        init(self, "_arguments", arguments)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Lifecycle is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Lifecycle is immutable: cannot delete {name!r}")

    def __reduce__(self) -> str | tuple[Any, ...]:
        """Pickled by name when it is D1's (unpickled as ``D1_LIFECYCLE`` itself), else as
        the arguments it was built from: so a lifecycle goes to worker processes."""
        if self is D1_LIFECYCLE:
            return "D1_LIFECYCLE"
        return _rebuilt, (self._arguments,)

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
        return build(GraphMachine, self._definition, self.initial, self.statuses, **kwargs)

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
        reach = self._graph.reach.get(a)
        return reach is not None and b in reach

    def on_one_path(self, statuses: Iterable[str]) -> bool:
        """Whether the known ``statuses`` all lie on one path from the initial state.

        Unknown statuses are ignored. False means the statuses contradict each other:
        a card cannot have passed through all of them.
        """
        return self._graph.on_one_path(statuses)

    def gaps(self, observed: Iterable[str], current: str) -> frozenset[str]:
        """The statuses a card in ``current`` must have passed but was not seen in.

        Among the paths from the initial state to ``current`` that pass every observed
        status able to precede ``current``, the statuses common to all of them, less
        the observed ones and ``current``. When those observed statuses do not lie on
        one path (contradicting evidence), every path to ``current`` is considered
        instead. Unknown statuses are ignored; an unknown ``current`` has no gaps.
        """
        return self._graph.gaps(observed, current)

    def successors(self, status: str) -> tuple[str, ...]:
        """The statuses one edge away from ``status``, in precedence order."""
        return self._graph.successors.get(status, ())

    def edges_from(self, status: str) -> tuple[Edge, ...]:
        """The edges leaving ``status``, in precedence order of their destinations."""
        return self._graph.edges_from.get(status, ())

    def describe(self, status: str) -> str:
        """What ``status`` means, or "" when the definition does not say."""
        return self._descriptions.get(status, "")

    def source(self, status: str) -> str:
        """Where the knowledge of ``status`` comes from, or "" when not recorded."""
        return self._sources.get(status, "")

    def trigger_source(self, trigger: str) -> str:
        """Where the edges of ``trigger`` come from (a source or our reading), or ""."""
        return self._trigger_sources.get(trigger, "")


def _rebuilt(arguments: dict[str, Any]) -> Lifecycle:
    """A pickled lifecycle, built again."""
    return Lifecycle(**arguments)


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
