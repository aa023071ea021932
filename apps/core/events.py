"""Domain events: frozen dataclasses registered under stable names, schema versions and upcasters.

An event's stored name (`accounts.MoneyAdded`) and its field names are a contract with every row
ever written, so they never follow Python paths. When an event's shape changes, its `version` goes
up and an upcaster lifts the stored data of the older version on load; rows are never rewritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured

EventData = dict[str, Any]
Upcaster = Callable[[EventData], EventData]


@dataclasses.dataclass(frozen=True)
class DomainEvent:
    """Base of every event. Subclasses are declared with the `@event(name, version)` decorator."""

    event_type: ClassVar[str]
    event_version: ClassVar[int]


E = TypeVar("E", bound=type[DomainEvent])

_registry: dict[str, type[DomainEvent]] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


class UnknownEvent(LookupError):
    pass


def event(name: str, *, version: int = 1) -> Callable[[E], E]:
    """Make the class a frozen dataclass and register it under its stable name."""

    def register(cls: E) -> E:
        if name in _registry and _registry[name].__qualname__ != cls.__qualname__:
            raise ImproperlyConfigured(f"event name {name!r} is registered twice")
        reserved = {"event_type", "event_version"} & set(getattr(cls, "__annotations__", {}))
        if reserved:
            # A field of that name would silently replace the stored name or schema version.
            raise ImproperlyConfigured(f"{name}: {', '.join(sorted(reserved))} is reserved")
        data_cls = dataclasses.dataclass(frozen=True)(cls)
        data_cls.event_type = name
        data_cls.event_version = version
        _registry[name] = data_cls
        return data_cls

    return register


def upcaster(name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns stored data of `from_version` into `from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        _upcasters[(name, from_version)] = fn
        return fn

    return register


def event_class(name: str) -> type[DomainEvent]:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownEvent(f"no event is registered as {name!r}") from None


def upcast(name: str, version: int, data: EventData) -> EventData:
    """Lift stored data of an older schema version to the registered class's version."""
    target = event_class(name).event_version
    while version < target:
        try:
            data = _upcasters[(name, version)](dict(data))
        except KeyError:
            raise UnknownEvent(f"no upcaster for {name} v{version} -> v{version + 1}") from None
        version += 1
    if version > target:
        raise UnknownEvent(f"{name} v{version} is newer than this code knows (v{target})")
    return data


# --- JSON codec ------------------------------------------------------------------------------
# Event data is JSON: Decimal, UUID and datetimes travel as strings, integers as integers, and a
# float is refused outright because it would make money inexact and hashes unstable.

Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def _identity(value: Any) -> Any:
    return value


def _reject_float(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in event data; use int minor units or Decimal")
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(
        f"{type(value).__name__} inside a dict or list field is not JSON; declare a typed field "
        "or convert it to str (floats are never allowed: use int minor units or Decimal)"
    )


_SCALARS: dict[Any, Codec] = {
    int: (_reject_float, _identity),
    str: (_identity, _identity),
    bool: (_identity, _identity),
    Decimal: (str, Decimal),
    uuid.UUID: (str, uuid.UUID),
    dt.datetime: (dt.datetime.isoformat, dt.datetime.fromisoformat),
    dt.date: (dt.date.isoformat, dt.date.fromisoformat),
}


def _codec_for(annotation: Any) -> Codec:
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        enc, dec = _codec_for(inner)
        return (
            lambda v: None if v is None else enc(v),
            lambda v: None if v is None else dec(v),
        )
    if origin is tuple:
        enc, dec = _codec_for(args[0])
        return (lambda v: [enc(x) for x in v], lambda v: tuple(dec(x) for x in v))
    if origin in (dict, list) or annotation in (dict, list, Any):
        return (_json_value, _identity)
    raise ImproperlyConfigured(f"event fields of type {annotation!r} cannot be stored as JSON")


@cache
def _field_codecs(cls: type[DomainEvent]) -> tuple[tuple[str, Codec], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _codec_for(hints[f.name])) for f in dataclasses.fields(cls))


def encode(evt: DomainEvent) -> EventData:
    return {name: enc(getattr(evt, name)) for name, (enc, _) in _field_codecs(type(evt))}


def decode(name: str, version: int, data: EventData) -> DomainEvent:
    """Build the event object from a stored row, upcasting older schema versions first."""
    cls = event_class(name)
    if version != cls.event_version:
        data = upcast(name, version, data)
    return cls(**{field: dec(data[field]) for field, (_, dec) in _field_codecs(cls)})
