"""Who is acting, and in which request or job: captured into every event's meta_data.

The request middleware, Celery's task signals and `AuditedCommand` each open a context; services
never pass the actor around by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class CommandContext:
    actor: dict[str, Any] | None = None
    request: Any = None  # the Django HttpRequest; its user is read late, after DRF authenticates
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


# CommandContext is frozen, so one shared default instance is safe.
_NO_CONTEXT = CommandContext()
_current: ContextVar[CommandContext] = ContextVar("finaegis_command_context", default=_NO_CONTEXT)

SYSTEM_ACTOR = {"type": "system", "id": "system"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def user_actor(user: Any) -> dict[str, Any]:
    # The uuid alone: events are immutable, and personal data in them could never be erased.
    return {"type": "staff" if user.is_staff else "user", "id": str(user.uuid)}


@contextmanager
def command_context(**changes: Any) -> Iterator[CommandContext]:
    """Open a nested context; fields not given are inherited from the enclosing one."""
    ctx = replace(_current.get(), **changes)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current_context() -> CommandContext:
    return _current.get()


def current_actor() -> dict[str, Any]:
    ctx = _current.get()
    if ctx.actor is not None:
        return ctx.actor
    user = getattr(ctx.request, "user", None)
    if user is not None and user.is_authenticated:
        return user_actor(user)
    if ctx.request is not None:
        return {"type": "anonymous", "id": "anonymous"}
    return SYSTEM_ACTOR


def current_metadata() -> dict[str, Any]:
    """The meta_data stored with each event of the command being written now."""
    ctx = _current.get()
    meta: dict[str, Any] = {"actor": current_actor()}
    for key in ("request_id", "correlation_id", "causation_id"):
        value = getattr(ctx, key)
        if value:
            meta[key] = value
    return meta
