"""The exceptions cardflow raises: one hierarchy, every error names what and where.

    CardflowError                    base of everything cardflow raises on purpose
    ├── InvalidNotification          bad D1 input (also a ValueError); names the JSON path,
    │                                and the file and line when an adapter knows them
    ├── LifecycleError               a lifecycle definition that cannot be right (also a ValueError)
    ├── CardMismatchError            merging the states of two different cards (also a ValueError)
    ├── NotProduceError              a non-PRODUCE operation where a card state must be made
    ├── ReactionError                reactions that raised, raised together after a whole
    │                                body was applied (also an ExceptionGroup)
    ├── StateFormatError             bytes that are not a state in a format this version reads
    │                                (also a ValueError)
    ├── FoldClosedError              the states of a fold of files asked for again, or after
    │                                it was closed: its workers are gone (also a ValueError)
    └── StoreUnavailable             the store's database cannot be reached or failed for a
        │                            reason that is not the input (a service answers 503)
        ├── StoreSchemaError         a database whose schema this version cannot use: newer,
        │                            or not a cardflow store; the message says what to do
        └── NewerStateError          one card's stored state is in a format newer than this
                                     version reads: names the card and both versions

The adapters raise their own under ``CardflowError`` too: ``cardflow.d1.TLSFileError``
(a TLS file that cannot be read or used, also a ValueError) and the batch pool's
``ClusterError`` (no Dask, or an unreachable scheduler).

Anomalies in well-formed D1 traffic (contradicting statuses, lost notifications) are
never raised: they are data, reported on the card's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "CardMismatchError",
    "CardflowError",
    "FoldClosedError",
    "InvalidNotification",
    "LifecycleError",
    "NewerStateError",
    "NotProduceError",
    "ReactionError",
    "StateFormatError",
    "StoreSchemaError",
    "StoreUnavailable",
]


class CardflowError(Exception):
    """Base class of every exception that cardflow raises on purpose."""


class InvalidNotification(CardflowError, ValueError):  # noqa: N818 (the name is the API)
    """A D1 body, or one operation in it, that does not fit the wire model.

    ``path`` is the JSON path of the fault (``$.operations[3].startTime``), ``reason``
    says what was wrong there, ``index`` is the operation's position in the body when
    the fault lies inside one operation. Adapters that read files fill ``source`` and
    ``line`` so that the message points at the input a person can open.
    """

    def __init__(
        self,
        reason: str,
        path: str = "$",
        *,
        index: int | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.index = index
        self.source = source
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path
        if self.source is not None:
            at = self.source if self.line is None else f"{self.source}:{self.line}"
            where = f"{at}: {where}"
        return f"{where}: {self.reason}"

    def located(self, source: str, line: int | None = None) -> InvalidNotification:
        """A copy of this error that also names the file (and line) it came from."""
        return InvalidNotification(
            self.reason, self.path, index=self.index, source=source, line=line
        )


class LifecycleError(CardflowError, ValueError):
    """A lifecycle definition that is invalid: the message names the fault and the states."""


class CardMismatchError(CardflowError, ValueError):
    """Two card states that cannot be merged because they belong to different cards."""


class NotProduceError(CardflowError, ValueError):
    """An operation of another type where only a PRODUCE event can make a card state."""


class StateFormatError(CardflowError, ValueError):
    """Bytes that ``decode_state`` cannot read: not a state, corrupt, or from a later version."""


class ReactionError(CardflowError, ExceptionGroup[Exception]):
    """Reactions that raised while a body was applied: their exceptions, grouped.

    Raised after every operation of the body was applied, so that nothing but the
    failed reactions is lost, and they are not: each fires again on the next delivery
    of its operation. ``changes[i]`` is the change whose reaction raised
    ``exceptions[i]`` (its ``key`` is the reaction's idempotency key); ``ingested`` is
    what the call would have returned. A webhook service answers 5xx so that D1
    delivers the body again.
    """

    changes: tuple[Any, ...]
    ingested: Any

    @classmethod
    def of(cls, failures: Sequence[tuple[Any, Exception]], ingested: Any) -> ReactionError:
        """The group of ``(change, exception)`` failures, each exception noted with its key."""
        for change, error in failures:
            error.add_note(
                f"cardflow: reaction to {change.kind} {change.status} of card"
                f" {change.card_id!r} (key {change.key}); it fires again when operation"
                f" {change.operation_id!r} is delivered again"
            )
        group = cls(
            f"{len(failures)} reaction(s) raised; the body was applied in full",
            [error for _, error in failures],
        )
        group.changes = tuple(change for change, _ in failures)
        group.ingested = ingested
        return group

    def derive(self, excs: Sequence[Exception]) -> Self:  # type: ignore[override]
        kept = [
            change
            for change, error in zip(self.changes, self.exceptions, strict=True)
            if any(error is e for e in excs)
        ]
        group = type(self)(self.message, list(excs))
        group.changes = tuple(kept)
        group.ingested = self.ingested
        return group


class FoldClosedError(CardflowError, ValueError):
    """The states of a ``cardflow.batch.fold_files`` asked for a second time, or after it
    was closed: they are handed out once, and the worker processes that held them have
    stopped. Fold the files again."""


class StoreUnavailable(CardflowError):  # noqa: N818 (the name is the API)
    """The store's database could not be reached, or failed for a reason other than the
    input: nothing of the call was committed, and the same call may succeed later. A
    webhook service answers 503 so that D1 delivers the body again."""


class StoreSchemaError(StoreUnavailable):
    """A database whose schema this version of cardflow cannot use: written by a later
    version, or not a cardflow store. The message says what to do."""


class NewerStateError(StoreUnavailable):
    """A card's stored state is in a state format newer than this cardflow reads: a
    later version wrote it. Only that card is refused (its ``card_id``; ``found`` and
    ``known`` are the two format versions); upgrade cardflow in every process that
    opens the store. A service answers 503: D1 delivers again, to an upgraded worker."""

    def __init__(self, card_id: str, found: int, known: int) -> None:
        self.card_id = card_id
        self.found = found
        self.known = known
        super().__init__(
            f"the stored state of card {card_id!r} is in state format version {found},"
            f" newer than this cardflow reads (up to {known}): upgrade cardflow"
            " (pip install -U cardflow) in every process that opens the store"
        )
