"""Steps: small ``records -> records`` units listed in a recipe.

A step receives an iterable of ``Record`` and yields ``Record`` (kept, possibly changed) or
``Reject`` (dropped, with a reason). It never counts or writes rejects itself: the runner does,
so that rows in = rows out + rejects holds for every step. A ``Filter`` only decides.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from slime_data.recipes import validation_message
from slime_data.record import Record, Reject

if TYPE_CHECKING:
    from slime_data.shards import ShardSet

StepOutput = Iterator[Record | Reject]


class Step(ABC):
    """Base class. Subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str] = "step"
    scope: ClassVar[str] = "record"  # "record": one record at a time, per unit; "global": see GlobalStep
    # Parameters the step takes from its caller's context rather than its recipe entry (the
    # build's --root, the mix recipe's folder, --workers, the build recipe's caps): see make_step.
    context_keys: ClassVar[tuple[str, ...]] = ()
    # True: the build recipe builds the step once when it is loaded, so a bad parameter is an
    # error before any work starts (for steps that are cheap to build and need no context).
    validate_at_load: ClassVar[bool] = False

    @abstractmethod
    def run(self, records: Iterable[Record]) -> StepOutput:
        """Yield each record kept (possibly changed) or a ``Reject``."""

    def __call__(self, records: Iterable[Record]) -> StepOutput:
        return self.run(records)

    def reject(self, record: Record, reason: str, detail: str = "") -> Reject:
        return Reject(id=record.id, source=record.source, step=self.name, reason=reason, detail=detail)


class Filter(Step):
    """A step that only keeps or drops. ``decide`` returns None to keep, or (reason, detail)."""

    @abstractmethod
    def decide(self, record: Record) -> tuple[str, str] | None:
        """None to keep the record, or (reason, detail) to drop it."""

    def run(self, records: Iterable[Record]) -> StepOutput:
        for record in records:
            verdict = self.decide(record)
            yield record if verdict is None else self.reject(record, *verdict)


STEP_REGISTRY: dict[str, type[Step]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    """Make a step class available to recipes under its ``name``."""
    if cls.name in STEP_REGISTRY and STEP_REGISTRY[cls.name] is not cls:
        raise ValueError(f"two steps are named {cls.name!r}")
    STEP_REGISTRY[cls.name] = cls
    return cls


def make_step(name: str, params: Mapping[str, Any], context: Mapping[str, Any], what: str = "step") -> Step:
    """The registered step ``name`` from its recipe ``params`` plus the ``context`` values it
    declares in ``context_keys`` (its own params win). A bad parameter is a one-line ValueError
    that names the step (``what``: how the caller's recipe calls it)."""
    cls = STEP_REGISTRY[name]
    given = {key: value for key, value in context.items() if key in cls.context_keys}
    arguments = {**given, **params}
    try:  # a parameter the step does not take, or a missing one; a TypeError inside __init__ is a bug
        inspect.signature(cls).bind(**arguments)
    except TypeError as err:
        raise ValueError(f"{what} {name!r}: {err}") from None
    try:
        return cls(**arguments)
    except ValidationError as err:
        raise ValueError(f"{what} {name!r}: {validation_message(err)}") from None


class GlobalStep(Step):
    """A step that must see the whole dataset before it can decide (dedup, decontamination, caps).

    The build runs it in two passes: ``plan`` reads compact columns of the joined shard set
    (never the images) and returns the ids to drop with their reasons; ``run`` then streams
    the records and drops those. Several global steps plan one after another, each ignoring
    the rows earlier ones drop, and then filter in a single pass.
    """

    scope: ClassVar[str] = "global"

    def __init__(self) -> None:
        self.drops: dict[str, tuple[str, str]] = {}

    @abstractmethod
    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        """Ids to drop -> (reason, detail), decided from the whole joined set minus ``exclude``
        (the ids earlier global steps already drop). Implementations also keep it in ``self.drops``."""

    def run(self, records: Iterable[Record]) -> StepOutput:
        for record in records:
            verdict = self.drops.get(record.id)
            yield record if verdict is None else self.reject(record, *verdict)
