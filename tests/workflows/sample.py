"""A workflow for the runtime's tests, a classic saga: book a flight (outside), charge (a local
tally, in our database), book a hotel (outside), wait for the confirmation (outside).

`world` stands for the outside: bookings by idempotency key, a log of what happened, and a
plan of outcomes per (phase, step) that tests set to make steps fail, wait or crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from apps.core.errors import InvalidInput
from apps.workflows.definition import (
    Step,
    StepContext,
    StepError,
    StepPending,
    TransientStepError,
    Workflow,
    register,
)
from tests.eventstore_app.services import tally_increment

TRIP = "tests.trip"


class World:
    def __init__(self) -> None:
        self.bookings: dict[str, dict[str, Any]] = {}
        self.log: list[str] = []
        self.plans: dict[tuple[str, str], list[str | Callable[[StepContext], None]]] = {}
        self.contexts: list[StepContext] = []

    def plan(self, phase: str, step: str, *outcomes) -> None:
        self.plans[(phase, step)] = list(outcomes)

    def outcome(self, phase: str, ctx: StepContext) -> None:
        self.contexts.append(ctx)
        planned = self.plans.get((phase, ctx.step))
        action = planned.pop(0) if planned else "ok"
        if callable(action):
            action(ctx)
        elif action == "transient":
            raise TransientStepError(f"{ctx.step} is flaky")
        elif action == "permanent":
            raise StepError(f"{ctx.step} was refused")
        elif action == "pending":
            raise StepPending(f"{ctx.step} not yet", retry_after=10)
        elif action == "unexpected":
            raise RuntimeError(f"{ctx.step} broke")


world = World()


def _book(ctx: StepContext) -> dict[str, Any]:
    world.outcome("run", ctx)
    world.bookings.setdefault(ctx.idempotency_key, {"step": ctx.step, "cancelled": False})
    world.log.append(f"book {ctx.step}")
    return {"booking": ctx.idempotency_key}


def _cancel(ctx: StepContext) -> dict[str, Any]:
    world.outcome("compensate", ctx)
    booking = world.bookings.get(ctx.idempotency_key)
    world.log.append(f"cancel {ctx.step}" + ("" if ctx.result else " (in doubt)"))
    if booking is None:
        return {"found": False}
    booking["cancelled"] = True
    return {"found": True}


def _charge(ctx: StepContext) -> dict[str, Any]:
    world.outcome("run", ctx)
    tally_increment(tally_uuid=uuid.UUID(ctx.input["tally"]), amount=ctx.input["amount"])
    world.log.append("charge")
    return {"charged": ctx.input["amount"]}


def _refund(ctx: StepContext) -> dict[str, Any]:
    world.outcome("compensate", ctx)
    assert ctx.result is not None
    tally_increment(tally_uuid=uuid.UUID(ctx.input["tally"]), amount=-ctx.result["charged"])
    world.log.append("refund")
    return {"refunded": ctx.result["charged"]}


def _confirm(ctx: StepContext) -> dict[str, Any]:
    world.outcome("run", ctx)
    world.log.append("confirm")
    return {"confirmed": True}


@register
class Trip(Workflow):
    type = TRIP

    def validate(self, input: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(input.get("amount"), int):
            raise InvalidInput(details={"amount": ["must be an integer"]})
        return {"tally": str(input["tally"]), "amount": input["amount"]}

    def steps(self, input: dict[str, Any]) -> list[Step]:
        return [
            Step("flight", _book, _cancel),
            Step("charge", _charge, _refund, local=True),
            Step("hotel", _book, _cancel),
            Step("confirm", _confirm, timeout_seconds=3600),
        ]
