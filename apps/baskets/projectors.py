"""baskets events -> BasketAsset, BasketComponent, BasketCompositionChange, BasketOperation and
BankAllocationEntry (inside the write transaction)."""

from __future__ import annotations

from apps.baskets.events import (
    BankAllocationSet,
    BasketActivated,
    BasketComposed,
    BasketCompositionChanged,
    BasketCompositionScheduled,
    BasketDeactivated,
    BasketDecomposed,
    BasketDefined,
    BasketQuantitiesFixed,
    BasketRebalanced,
)
from apps.baskets.models import (
    BankAllocationEntry,
    BasketAsset,
    BasketComponent,
    BasketCompositionChange,
    BasketOperation,
)
from apps.core.projection import EventRecord, Projector

baskets_projector = Projector(
    "baskets",
    read_models=(
        BasketComponent,
        BasketCompositionChange,
        BasketOperation,
        BankAllocationEntry,
        BasketAsset,
    ),
)


def _code(record: EventRecord) -> str:
    return BasketAsset.objects.filter(uuid=record.aggregate_uuid).values_list("code", flat=True)[0]


def _weights(code: str) -> dict[str, str]:
    return {
        c.asset_code: str(c.weight)
        for c in BasketComponent.objects.filter(basket_id=code).order_by("position")
    }


def _set_weights(code: str, weights: dict[str, str]) -> None:
    for asset_code, weight in weights.items():
        BasketComponent.objects.filter(basket_id=code, asset_code=asset_code).update(weight=weight)


def _history(record: EventRecord, code: str, kind: str, weights: dict[str, str], **fields) -> None:
    BasketCompositionChange.objects.create(
        id=record.id,
        basket_id=code,
        kind=kind,
        weights=weights,
        actor=record.meta_data.get("actor", {}),
        created_at=record.created_at,
        **fields,
    )


@baskets_projector.on(BasketDefined)
def _defined(evt: BasketDefined, record: EventRecord) -> None:
    BasketAsset.objects.create(
        code=evt.code,
        uuid=record.aggregate_uuid,
        name=evt.name,
        type=evt.type,
        rebalance_frequency=evt.rebalance_frequency,
        reserve_account=evt.reserve_account,
        created_at=record.created_at,
        updated_at=record.created_at,
    )
    BasketComponent.objects.bulk_create(
        BasketComponent(
            basket_id=evt.code,
            asset_code=c["asset_code"],
            weight=c["weight"],
            min_weight=c["min_weight"],
            max_weight=c["max_weight"],
            position=position,
        )
        for position, c in enumerate(evt.components)
    )
    _history(record, evt.code, "defined", {c["asset_code"]: c["weight"] for c in evt.components})


@baskets_projector.on(BasketActivated, BasketDeactivated)
def _activity(evt: BasketActivated | BasketDeactivated, record: EventRecord) -> None:
    BasketAsset.objects.filter(uuid=record.aggregate_uuid).update(
        is_active=isinstance(evt, BasketActivated), updated_at=record.created_at
    )


@baskets_projector.on(BasketCompositionScheduled)
def _scheduled(evt: BasketCompositionScheduled, record: EventRecord) -> None:
    code = _code(record)
    BasketAsset.objects.filter(code=code).update(
        pending_components=evt.components,
        pending_effective_on=evt.effective_on,
        pending_poll_uuid=evt.poll_uuid,
        updated_at=record.created_at,
    )
    _history(
        record,
        code,
        "scheduled",
        {c["asset_code"]: c["weight"] for c in evt.components},
        previous_weights=_weights(code),
        poll_uuid=evt.poll_uuid,
        effective_on=evt.effective_on,
    )


@baskets_projector.on(BasketCompositionChanged)
def _changed(evt: BasketCompositionChanged, record: EventRecord) -> None:
    code = _code(record)
    new = {c["asset_code"]: c["new_weight"] for c in evt.components}
    _set_weights(code, new)
    BasketAsset.objects.filter(code=code).update(
        pending_components=None,
        pending_effective_on=None,
        pending_poll_uuid=None,
        updated_at=record.created_at,
    )
    _history(
        record,
        code,
        "changed",
        new,
        previous_weights={c["asset_code"]: c["old_weight"] for c in evt.components},
        poll_uuid=evt.poll_uuid,
        reason=evt.reason[:500],
    )


@baskets_projector.on(BasketRebalanced)
def _rebalanced(evt: BasketRebalanced, record: EventRecord) -> None:
    code = _code(record)
    new = {a["asset_code"]: a["new_weight"] for a in evt.adjustments}
    _set_weights(code, new)
    BasketAsset.objects.filter(code=code).update(
        last_rebalanced_at=evt.at,
        last_rebalance={"adjustments": evt.adjustments, "value": str(evt.value)},
        updated_at=record.created_at,
    )
    _history(
        record,
        code,
        "rebalanced",
        new,
        previous_weights={a["asset_code"]: a["old_weight"] for a in evt.adjustments},
        value=evt.value,
    )


@baskets_projector.on(BasketQuantitiesFixed)
def _quantities_fixed(evt: BasketQuantitiesFixed, record: EventRecord) -> None:
    code = _code(record)
    for component in evt.components:
        BasketComponent.objects.filter(basket_id=code, asset_code=component["asset_code"]).update(
            quantity=component["new_quantity"]
        )
    BasketAsset.objects.filter(code=code).update(updated_at=record.created_at)
    _history(
        record,
        code,
        "quantities",
        {c["asset_code"]: c["weight"] for c in evt.components},
        value=evt.unit_value,
        reason=evt.reason[:500],
    )


@baskets_projector.on(BasketComposed, BasketDecomposed)
def _operation(evt: BasketComposed | BasketDecomposed, record: EventRecord) -> None:
    BasketOperation.objects.create(
        uuid=record.aggregate_uuid,
        kind="compose" if isinstance(evt, BasketComposed) else "decompose",
        account_id=evt.account_uuid,
        basket_code=evt.basket_code,
        amount=evt.amount,
        components=evt.components,
        actor=evt.by,
        created_at=record.created_at,
    )


@baskets_projector.on(BankAllocationSet)
def _allocation(evt: BankAllocationSet, record: EventRecord) -> None:
    BankAllocationEntry.objects.filter(user_uuid=evt.user_uuid).delete()
    BankAllocationEntry.objects.bulk_create(
        BankAllocationEntry(
            user_uuid=evt.user_uuid,
            bank_code=entry["bank_code"],
            percentage=entry["percentage"],
            is_primary=entry["is_primary"],
            position=position,
            updated_at=record.created_at,
        )
        for position, entry in enumerate(evt.allocations)
    )
