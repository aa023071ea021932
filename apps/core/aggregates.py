"""The aggregate base: a command method checks a rule, then records an event; `apply` mutates state.

Aggregates are pure Python: no ORM, no I/O and no clock (a command that needs the time is given
it). The event store loads them, persists what they recorded and runs the projectors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured

from apps.core.events import DomainEvent
from apps.core.hashing import GENESIS_HASH

A = TypeVar("A", bound="AggregateRoot")
Applier = Callable[[Any, Any], None]

_aggregate_types: dict[str, type[AggregateRoot]] = {}


def applies(*event_classes: type[DomainEvent]) -> Callable[[Applier], Applier]:
    """Mark an aggregate method as the one that applies these events to the state."""

    def mark(method: Applier) -> Applier:
        method._applies = event_classes  # type: ignore[attr-defined]
        return method

    return mark


class AggregateRoot:
    """Base of every aggregate.

    `aggregate_type` is the stable name `<app_label>.<Name>`; the app label picks the event table.
    State lives in public attributes holding JSON values (ints, strings, dicts, lists), which is
    what makes the default snapshot work; an aggregate with richer state overrides
    `snapshot_state` and `restore_state`.
    """

    aggregate_type: ClassVar[str]
    snapshot_every: ClassVar[int | None] = None  # None: the EVENT_STORE_SNAPSHOT_EVERY setting
    _appliers: ClassVar[dict[type[DomainEvent], Applier]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._appliers = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for event_cls in getattr(attr, "_applies", ()):
                    cls._appliers[event_cls] = attr
        name = cls.__dict__.get("aggregate_type")
        if name:
            if name in _aggregate_types and _aggregate_types[name].__qualname__ != cls.__qualname__:
                raise ImproperlyConfigured(f"aggregate type {name!r} is declared twice")
            _aggregate_types[name] = cls

    def __init__(self, aggregate_uuid: uuid.UUID):
        self.uuid = aggregate_uuid
        self.version = 0
        self._pending: list[DomainEvent] = []
        self._persisted_version = 0
        self._last_hash = GENESIS_HASH
        self._is_new = True

    @property
    def app_label(self) -> str:
        return self.aggregate_type.split(".", 1)[0]

    def record(self, evt: DomainEvent) -> None:
        """Apply a new event and keep it to be persisted."""
        self.apply(evt)
        self._pending.append(evt)

    def apply(self, evt: DomainEvent) -> None:
        try:
            applier = self._appliers[type(evt)]
        except KeyError:
            raise ImproperlyConfigured(
                f"{type(self).__name__} has no @applies({type(evt).__name__}) method"
            ) from None
        applier(self, evt)
        self.version += 1

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        return tuple(self._pending)

    def mark_persisted(self, last_hash: str) -> None:
        self._pending.clear()
        self._persisted_version = self.version
        self._last_hash = last_hash
        self._is_new = False

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in vars(self).items()
            if not key.startswith("_") and key not in ("uuid", "version")
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def aggregate_class(aggregate_type: str) -> type[AggregateRoot]:
    try:
        return _aggregate_types[aggregate_type]
    except KeyError:
        raise LookupError(f"no aggregate is declared as {aggregate_type!r}") from None


def aggregate_classes() -> dict[str, type[AggregateRoot]]:
    return dict(_aggregate_types)
