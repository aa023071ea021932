"""Write side of baskets and bank allocation.

Compose and decompose are balanced journal entries between the customer's account and the
basket's reserve (a system account, `basket_reserve:<code>`, opened by the first compose):
composing moves each component
from the account to the reserve and issues basket units from the reserve to the account;
decomposing does the reverse. Per asset the postings sum to zero, so the ledger's conservation
holds; the reserve may go below zero in basket units (it is their issuer).

Every unit of a basket holds a fixed quantity of each component (minor units per basket minor
unit), recomputed at each rebalance and composition change so that each component's share of
the value is its voted weight, the value of a unit unchanged (the IMF's SDR method); the price
of a unit is the value of that composition (selectors.basket_unit_value), for its exchange
rates, its valuation and these operations alike. Compose charges quantity x amount rounded up,
decompose pays it rounded down: the reserve keeps the residue, so it always holds at least what
the outstanding units contain. When the quantities change, one entry between the reserve and
the FX position moves the difference for the outstanding units.

Postings use the ledger's "conversion" kind until the Account aggregate accepts basket kinds.

The monthly composition vote: on the 20th a weighted poll opens for next month, one option per
component (its bounds and current weight as the default); when it closes with a winner and its
participation met, the "update_basket_composition" workflow schedules the power-weighted average
for the 1st, when the job of the 1st applies it together with a rebalance.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.aggregates import SYSTEM
from apps.accounts.models import Account as AccountView
from apps.accounts.posting import JournalEntry, entry_post, positive_amount, transfer_legs
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import FX_POSITION, system_account_ensure, system_account_uuid
from apps.assets.models import AssetType
from apps.assets.providers import Quote
from apps.assets.selectors import asset_get, asset_get_active, asset_list, asset_precisions
from apps.baskets.aggregates import (
    DYNAMIC,
    MONTHLY,
    BankAllocation,
    Basket,
    BasketOperation,
    BasketReserveShort,
    component_amounts,
    composition_from_vote,
    parse_unit_value,
    rebalance_due,
    reserve_account_code,
)
from apps.baskets.models import BasketAsset, BasketValue, PartnerBank
from apps.baskets.models import BasketOperation as BasketOperationView
from apps.baskets.selectors import (
    DEFAULT_ALLOCATION,
    Allocation,
    bank_allocation_get,
    basket_compose_cost,
    basket_get,
    basket_get_active,
    basket_mid_prices,
    basket_unit_value,
)
from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import (
    AggregateNotFound,
    BasketNotDynamic,
    DomainError,
    ExchangeRateNotFound,
    InvalidComposition,
    InvalidInput,
    NotFound,
)
from apps.core.idempotency import ReplayedDomainError, request_fingerprint, run_idempotent
from apps.governance.aggregates import WEIGHTED_CHOICE, percent_text
from apps.governance.models import Poll as PollView
from apps.governance.services import (
    ExecutionContext,
    ExecutionWorkflow,
    execution_workflow_register,
    poll_activate,
    poll_close,
    poll_create,
    vote_cast,
)

logger = logging.getLogger(__name__)

UPDATE_COMPOSITION = "update_basket_composition"
MAX_REASON_LENGTH = 500

GCU = {
    "code": "GCU",
    "name": "Global Currency Unit",
    "type": DYNAMIC,
    "rebalance_frequency": MONTHLY,
    "components": [
        {"asset_code": "USD", "weight": "40", "min_weight": "20", "max_weight": "50"},
        {"asset_code": "EUR", "weight": "30", "min_weight": "20", "max_weight": "40"},
        {"asset_code": "GBP", "weight": "15", "min_weight": "5", "max_weight": "25"},
        {"asset_code": "CHF", "weight": "10", "min_weight": "5", "max_weight": "20"},
        {"asset_code": "JPY", "weight": "3", "min_weight": "0", "max_weight": "10"},
        {"asset_code": "XAU", "weight": "2", "min_weight": "0", "max_weight": "10"},
    ],
    "initial_value": "1",  # USD per GCU when first defined, like the SDR's 1969 dollar
}
# code, name, country; each insures deposits up to 100,000 EUR per depositor.
PARTNER_BANKS = (
    ("PAYSERA", "Paysera", "LT"),
    ("DEUTSCHE", "Deutsche Bank", "DE"),
    ("SANTANDER", "Banco Santander", "ES"),
    ("REVOLUT", "Revolut", "LT"),
    ("WISE", "Wise", "BE"),
)
DEPOSIT_INSURANCE_EUR_CENTS = 100_000_00


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or timezone.now()).astimezone(dt.UTC)


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            details={"reason": [f"a text of at most {MAX_REASON_LENGTH} characters"]}
        )
    return reason


def _load_basket(code: str) -> Basket:
    try:
        return store.load_one(Basket, Basket.for_code(code).uuid)
    except AggregateNotFound:
        raise NotFound("No such basket.", details={"basket_code": code}) from None


# --- baskets -------------------------------------------------------------------------------------


@store.command
def basket_define(
    *,
    code: str,
    name: str,
    type: str,
    rebalance_frequency: str,
    components: list[dict[str, Any]],
    initial_value: Any = "1",
) -> BasketAsset:
    """Define a basket over an asset of type basket, one unit worth `initial_value` USD: each
    component's quantity is fixed from its weight at the mid rates of now, and the basket's
    exchange rates are recorded from that value. The same definition again changes nothing
    (its weights may have moved by vote since). Its reserve, the system account
    `basket_reserve:<code>`, is opened by the first compose."""
    value = parse_unit_value(initial_value)
    asset = asset_get(code)
    if asset.type != AssetType.BASKET:
        raise InvalidInput(details={"code": [f"{code} is not an asset of type basket"]})
    for component in components if isinstance(components, list) else []:
        component_code = component.get("asset_code") if isinstance(component, dict) else None
        if not isinstance(component_code, str):
            continue
        if asset_get(component_code).type == AssetType.BASKET:
            raise InvalidComposition(details={"components": [f"{component_code} is a basket"]})
    try:
        basket = _load_basket(code)
    except NotFound:
        basket = Basket.for_code(code)
    if basket.define(
        code=code,
        name=name,
        type=type,
        rebalance_frequency=rebalance_frequency,
        components=components,
        reserve_account=system_account_uuid(reserve_account_code(code)),
        by=current_actor(),
    ):
        _fix_and_save(basket, reason="defined", now=_now(None), initial_value=value)
        basket_rates_record(code=code)
    return basket_get(code)


@store.command
def basket_activate(*, code: str, reason: str = "", now: dt.datetime | None = None) -> BasketAsset:
    basket = _load_basket(code)
    basket.activate(reason=_reason(reason), now=_now(now), by=current_actor())
    store.save(basket)
    return basket_get(code)


@store.command
def basket_deactivate(
    *, code: str, reason: str = "", now: dt.datetime | None = None
) -> BasketAsset:
    """No compose, decompose, vote or rebalance while inactive; holdings stay where they are."""
    basket = _load_basket(code)
    basket.deactivate(reason=_reason(reason), now=_now(now), by=current_actor())
    store.save(basket)
    return basket_get(code)


@store.command
def basket_composition_schedule(
    *,
    code: str,
    weights: dict[str, Any],
    effective_on: dt.date,
    poll_uuid: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> BasketAsset:
    """Decide a composition that takes effect on `effective_on` (see basket_composition_apply)."""
    basket = _load_basket(code)
    basket.schedule_composition(
        weights=weights,
        effective_on=effective_on,
        poll_uuid=poll_uuid,
        now=_now(now),
        by=current_actor(),
    )
    store.save(basket)
    return basket_get(code)


@store.command
def basket_composition_apply(*, code: str, now: dt.datetime | None = None) -> bool:
    """Apply the scheduled composition if its day has come; False when none is due."""
    now = _now(now)
    basket = _load_basket(code)
    applied = basket.apply_scheduled(now=now, by=current_actor())
    if applied:
        _fix_and_save(basket, reason="composition changed", now=now)
    return applied


@store.command
def basket_rebalance(*, code: str, now: dt.datetime | None = None) -> BasketAsset:
    """Dynamic and active baskets whose value is above zero: clamp each weight into its bounds
    and normalise the sum to 100 within them, then fix each component's quantity so that its
    share of the value is its weight, the value of a unit unchanged, and rebalance the reserve
    through the FX position. A missing rate refuses it (EXCHANGE_RATE_NOT_FOUND)."""
    now = _now(now)
    basket = _load_basket(code)
    basket.require_active()
    value = basket_unit_value(code).value
    basket.rebalance(value=value, now=now, by=current_actor())
    _fix_and_save(basket, reason="rebalanced", now=now)
    return basket_get(code)


def _outstanding(basket_code: str, reserve: uuid.UUID) -> int:
    """Units in circulation: the reserve issues them, so it holds minus their number."""
    return -balances_by_asset(reserve).get(basket_code, 0)


def _fix_and_save(
    basket: Basket, *, reason: str, now: dt.datetime, initial_value: Decimal | None = None
) -> None:
    """Fix the basket's quantities at the mid rates of the moment (the rates in force now, even
    when `now` is an earlier business time) and save it with the entry that moves the
    difference for the outstanding units between the reserve and the FX position.

    The caller holds the basket's lock, which every compose and decompose takes too, so the
    outstanding units and the reserve cannot change under it."""
    reserve = uuid.UUID(basket.reserve_account)
    fx = system_account_ensure(code=FX_POSITION, name="FX position").uuid
    precisions = asset_precisions()
    held = basket.unit_quantities(precisions) if initial_value is None else {}
    priced = {code for code, weight in basket.weights.items() if weight}
    priced |= {code for code, quantity in held.items() if quantity}
    entry_uuid = uuid.uuid4()
    moves = basket.fix_quantities(
        prices=basket_mid_prices(sorted(priced), at=timezone.now()),
        precisions=precisions,
        outstanding=_outstanding(basket.code, reserve) if initial_value is None else 0,
        reserve_account=reserve,
        fx_account=fx,
        entry_uuid=entry_uuid,
        reason=reason,
        now=now,
        by=current_actor(),
        initial_value=initial_value,
    )
    if not moves:
        store.save(basket)
        return
    legs = [
        leg
        for code, move in moves.items()
        for leg in (
            transfer_legs(fx, reserve, code, move)
            if move > 0
            else transfer_legs(reserve, fx, code, -move)
        )
    ]
    entry = JournalEntry(entry_uuid, "conversion", tuple(legs), f"rebalance {basket.code} reserve")
    entry_post(entry, basket)


def basket_quotes(*, code: str | None = None) -> list[Quote]:
    """The rates of each active basket (or `code`) against every other asset with a USD rate,
    at the value of its composition (basket_unit_value) and the mid rates in force now; the
    rates provider's refresh records them with its batch. A basket that cannot be valued (a
    missing rate) is logged and gets no quote, never a stale or made-up one."""
    baskets = BasketAsset.objects.filter(is_active=True).values_list("code", flat=True)
    codes = [code] if code is not None else list(baskets.order_by("code"))
    assets = asset_list(is_active=True).exclude(type=AssetType.BASKET)
    asset_codes = list(assets.order_by("code").values_list("code", flat=True))
    now = timezone.now()
    quotes = []
    for basket_code in codes:
        try:
            value = basket_unit_value(basket_code, at=now).value
        except ExchangeRateNotFound as exc:
            logger.error("basket %s has no rate: %s", basket_code, exc.details)
            continue
        for asset_code in asset_codes:
            try:
                price = basket_mid_prices([asset_code], at=now)[asset_code]
            except ExchangeRateNotFound:
                continue
            # "oracle": a price the bank computes (its basket's composition), not a market's
            quotes.append(Quote(basket_code, asset_code, value / price, source="oracle"))
    return quotes


@store.command
def basket_rates_record(*, code: str) -> int:
    """Record the basket's rates now (see basket_quotes); returns how many."""
    from apps.assets.services import exchange_rate_record

    quotes = basket_quotes(code=code)
    for quote in quotes:
        exchange_rate_record(
            from_code=quote.from_code, to_code=quote.to_code, rate=quote.rate, source=quote.source
        )
    return len(quotes)


@store.command
def basket_value_record(*, code: str, now: dt.datetime | None = None) -> BasketValue:
    """Record the current value of one basket unit (the hourly history)."""
    valuation = basket_unit_value(code)
    return BasketValue.objects.create(
        basket_id=code,
        value=valuation.value,
        currency=valuation.currency,
        components={
            part.asset_code: {
                "weight": str(part.weight),
                "quantity": str(part.quantity),
                "rate": str(part.rate),
            }
            for part in valuation.components
        },
        calculated_at=_now(now),
    )


def basket_values_record(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Record the value of every active basket, each on its own; a basket that cannot be valued
    (a missing rate) is logged as an error and recorded nothing, never a zero."""
    recorded, failed = [], {}
    for code in BasketAsset.objects.filter(is_active=True).values_list("code", flat=True):
        try:
            basket_value_record(code=code, now=now)
        except DomainError as exc:
            logger.error("basket %s was not valued: %s %s", code, exc.code, exc.details)
            failed[code] = exc.code
            continue
        recorded.append(code)
    return {"recorded": recorded, "failed": failed}


def baskets_rebalance_due(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The daily job: for every active dynamic basket, apply a scheduled composition whose day
    has come and rebalance when it was applied or the rebalancing period (daily, weekly,
    monthly, quarterly) began after the last rebalance; each basket on its own."""
    now = _now(now)
    rebalanced, failed = [], {}
    baskets = BasketAsset.objects.filter(is_active=True, type=DYNAMIC).order_by("code")
    for code in baskets.values_list("code", flat=True):
        try:
            if basket_period_start(code=code, now=now)["rebalanced"]:
                rebalanced.append(code)
        except DomainError as exc:
            logger.error("basket %s was not rebalanced: %s", code, exc.code)
            failed[code] = exc.code
    return {"rebalanced": rebalanced, "failed": failed}


@store.command
def basket_period_start(*, code: str, now: dt.datetime | None = None) -> dict[str, bool]:
    """Apply the composition scheduled for today or earlier, then rebalance when it was
    applied or the basket's rebalancing period began after its last rebalance."""
    now = _now(now)
    applied = basket_composition_apply(code=code, now=now)
    basket = basket_get(code)
    rebalanced = applied or rebalance_due(
        basket.rebalance_frequency, basket.last_rebalanced_at, now
    )
    if rebalanced:
        basket_rebalance(code=code, now=now)
    return {"applied": applied, "rebalanced": rebalanced}


# --- compose and decompose -----------------------------------------------------------------------


@store.command
def _basket_operation(
    kind: str, account_uuid: uuid.UUID, basket_code: str, amount: int
) -> BasketOperationView:
    amount = positive_amount(amount)
    basket_get_active(basket_code)
    # Locked: a rebalance that changes the quantities waits for this operation, and it for one.
    basket = _load_basket(basket_code)
    basket.require_active()
    for asset_code in (basket_code, *basket.weights):
        asset_get_active(asset_code)
    quantities = basket.unit_quantities(asset_precisions())
    legs = component_amounts(
        amount=amount, quantities=quantities, weights=basket.weights, kind=kind
    )
    if not legs:
        raise InvalidInput(
            "The amount is too small to return any component of the basket.",
            details={"amount": ["every component would round to zero; use a larger amount"]},
        )
    reserve_code = reserve_account_code(basket_code)
    system_account_ensure(code=reserve_code, name=f"{basket_code} basket reserve")
    reserve = uuid.UUID(basket.reserve_account)
    if _is_system_account(account_uuid):
        raise InvalidInput(details={"account": ["baskets are held in customer accounts"]})
    if kind == "decompose":
        _check_reserve_issued(account_uuid, basket_code, reserve, amount)
    operation = BasketOperation(uuid.uuid4())
    # compose: the components go to the reserve and the units come back; decompose the reverse
    customer, bank = (account_uuid, reserve) if kind == "compose" else (reserve, account_uuid)
    entry_legs = [leg for code, qty, _ in legs for leg in transfer_legs(customer, bank, code, qty)]
    entry_legs.extend(transfer_legs(bank, customer, basket_code, amount))
    operation.record_operation(
        kind=kind,
        account_uuid=account_uuid,
        basket_code=basket_code,
        amount=amount,
        legs=legs,
        quantities=quantities,
        reserve_account=reserve,
        by=current_actor(),
    )
    entry = JournalEntry(operation.uuid, "conversion", tuple(entry_legs), f"{kind} {basket_code}")
    entry_post(entry, operation)
    return BasketOperationView.objects.get(uuid=operation.uuid)


def _check_reserve_issued(
    account_uuid: uuid.UUID, basket_code: str, reserve: uuid.UUID, amount: int
) -> None:
    """Units the reserve did not issue (sold by the FX position) are not backed by it: paying
    them out would take the backing of the units it did. An account without the units is left
    to the ledger's INSUFFICIENT_FUNDS."""
    outstanding = _outstanding(basket_code, reserve)
    held = balances_by_asset(account_uuid).get(basket_code, 0)
    if outstanding < amount <= held:
        raise BasketReserveShort(details={"amount": amount, "outstanding": outstanding})


def _is_system_account(account_uuid: uuid.UUID) -> bool:
    return AccountView.objects.filter(uuid=account_uuid, kind=SYSTEM).exists()


def _once(
    idempotency_key: str | None, request: dict, create: Callable[[], BasketOperationView]
) -> BasketOperationView:
    """Run `create` once per caller and key; a retry gets the same operation or the same error."""
    if idempotency_key is None:
        return create()
    result = run_idempotent(
        scope=str(current_actor()["id"]),
        key=idempotency_key,
        fingerprint=request_fingerprint(request),
        handler=lambda: (201, {"operation_uuid": str(create().uuid)}),
    )
    if result.status_code >= 400:
        raise ReplayedDomainError(result.body, result.status_code)
    return BasketOperationView.objects.get(uuid=result.body["operation_uuid"])


def basket_compose(
    *,
    account_uuid: uuid.UUID,
    basket_code: str,
    amount: int,
    idempotency_key: str | None = None,
) -> BasketOperationView:
    """Turn components held in the account into `amount` basket units (minor units): each
    component's amount is its fixed quantity per unit x amount, rounded up (the residue stays
    in the reserve). Without enough of a component the account is refused INSUFFICIENT_FUNDS."""
    request = {
        "op": "compose",
        "account": str(account_uuid),
        "basket": basket_code,
        "amount": amount,
    }
    return _once(
        idempotency_key,
        request,
        lambda: _basket_operation("compose", account_uuid, basket_code, amount),
    )


def basket_decompose(
    *,
    account_uuid: uuid.UUID,
    basket_code: str,
    amount: int,
    idempotency_key: str | None = None,
) -> BasketOperationView:
    """Turn `amount` basket units held in the account back into its components: each one's
    fixed quantity per unit x amount, rounded down (the residue stays in the reserve)."""
    request = {
        "op": "decompose",
        "account": str(account_uuid),
        "basket": basket_code,
        "amount": amount,
    }
    return _once(
        idempotency_key,
        request,
        lambda: _basket_operation("decompose", account_uuid, basket_code, amount),
    )


# --- the monthly composition vote ----------------------------------------------------------------


def _month_key(code: str, month: dt.date) -> str:
    return f"basket:{code}:{month:%Y-%m}"


def _month_after(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def _month_begins(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)


@store.command
def basket_vote_open(*, code: str, month: dt.date, now: dt.datetime | None = None) -> PollView:
    """Open (create and activate) the composition vote of the basket for `month`; it ends when
    that month begins. Opening it again returns the same poll."""
    now = _now(now)
    month = month.replace(day=1)
    basket = basket_get_active(code)
    if basket.type != DYNAMIC:
        raise BasketNotDynamic(details={"basket_code": code, "type": basket.type})
    names = dict(asset_list().values_list("code", "name"))
    options = [
        {
            "id": c.asset_code,
            "label": names.get(c.asset_code, c.asset_code),
            "min_weight": str(c.min_weight),
            "max_weight": str(c.max_weight),
            "default_weight": str(c.weight),
        }
        for c in basket.components.order_by("position")
    ]
    poll = poll_create(
        title=f"{code} composition for {month:%B %Y}",
        description=(
            f"Allocate a percentage to each component of {basket.name}: within each bound, "
            "summing to 100. The new composition is the power-weighted average of the votes, "
            f"applied on {month:%d %B %Y} with a rebalance."
        ),
        type=WEIGHTED_CHOICE,
        options=options,
        start_date=now,
        end_date=_month_begins(month),
        voting_power_strategy=settings.BASKET_VOTE_STRATEGY,
        required_participation=settings.BASKET_VOTE_REQUIRED_PARTICIPATION,
        execution_workflow=UPDATE_COMPOSITION,
        metadata={"basket_code": code, "voting_month": f"{month:%Y-%m}"},
        key=_month_key(code, month),
        now=now,
    )
    if poll.status == PollView.Status.DRAFT:
        poll = poll_activate(poll_uuid=poll.uuid, now=now)
    return poll


def basket_votes_open_monthly(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The job of the 20th: open next month's composition vote of every active, dynamic,
    monthly basket; each on its own."""
    now = _now(now)
    month = _month_after(now.date())
    opened, failed = {}, {}
    baskets = BasketAsset.objects.filter(is_active=True, type=DYNAMIC, rebalance_frequency=MONTHLY)
    for code in baskets.order_by("code").values_list("code", flat=True):
        try:
            opened[code] = str(basket_vote_open(code=code, month=month, now=now).uuid)
        except DomainError as exc:
            logger.error("the %s composition vote was not opened: %s", code, exc.code)
            failed[code] = exc.code
    return {"month": f"{month:%Y-%m}", "opened": opened, "failed": failed}


def basket_compositions_apply_monthly(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The job of the 1st: close this month's composition vote if it is still open (its
    workflow schedules the result for today), then apply it and rebalance
    (basket_period_start); each basket on its own."""
    now = _now(now)
    done, failed = {}, {}
    baskets = BasketAsset.objects.filter(is_active=True, type=DYNAMIC).order_by("code")
    for code in baskets.values_list("code", flat=True):
        try:
            poll = PollView.objects.filter(key=_month_key(code, now.date())).first()
            if poll is not None and poll.status == PollView.Status.ACTIVE and poll.end_date <= now:
                poll_close(poll_uuid=poll.uuid, now=now)
            done[code] = basket_period_start(code=code, now=now)
        except DomainError as exc:
            logger.error("the %s month start failed: %s %s", code, exc.code, exc.details)
            failed[code] = exc.code
    return {"baskets": done, "failed": failed}


def _check_composition_poll(*, poll_type: str, options: list[dict], metadata: dict) -> None:
    problems = []
    if poll_type != WEIGHTED_CHOICE:
        problems.append("a basket composition poll is a weighted_choice poll")
    code, month = metadata.get("basket_code"), metadata.get("voting_month")
    basket = BasketAsset.objects.filter(code=code).first() if isinstance(code, str) else None
    if basket is None or basket.type != DYNAMIC:
        problems.append("metadata.basket_code must name a dynamic basket")
    else:
        components = {c.asset_code for c in basket.components.all()}
        if {o["id"] for o in options} != components:
            problems.append(f"the options must be the basket's components: {sorted(components)}")
        if any("default_weight" not in o for o in options):
            problems.append("every option needs a default_weight")
    try:
        dt.datetime.strptime(str(month), "%Y-%m")
    except ValueError:
        problems.append("metadata.voting_month must be YYYY-MM")
    if problems:
        raise InvalidInput(details={"execution_workflow": problems})


def _run_composition_poll(context: ExecutionContext) -> dict[str, Any]:
    """Schedule the decided composition for the first day of the voting month; the job of the
    1st (or the daily job, if that one did not run) applies it with a rebalance."""
    code = context.metadata["basket_code"]
    month = dt.datetime.strptime(context.metadata["voting_month"], "%Y-%m").date()
    weights = composition_from_vote(
        totals=context.results["totals"],
        total_power=context.results["total_power"],
        options=context.options,
    )
    basket_composition_schedule(
        code=code,
        weights=weights,
        effective_on=month,
        poll_uuid=context.poll_uuid,
        now=context.closed_at,
    )
    return {
        "basket_code": code,
        "composition": {asset: percent_text(weight) for asset, weight in weights.items()},
        "effective_on": month.isoformat(),
    }


def workflows_register() -> None:
    execution_workflow_register(
        ExecutionWorkflow(
            name=UPDATE_COMPOSITION,
            description="Set a basket's composition to the power-weighted average of the votes.",
            run=_run_composition_poll,
            check=_check_composition_poll,
        )
    )


# --- bank allocation -----------------------------------------------------------------------------


@store.command
def bank_allocation_set(*, user_uuid: uuid.UUID, allocations: list[dict[str, Any]]) -> Allocation:
    """Replace the user's split across partner banks: known, active banks, each once, shares
    above zero summing to 100, exactly one primary, and the primary bank never removed."""
    banks = set(PartnerBank.objects.filter(is_active=True).values_list("code", flat=True))
    allocation_uuid = BankAllocation.for_user(user_uuid).uuid
    try:
        allocation = store.load_one(BankAllocation, allocation_uuid)
    except AggregateNotFound:
        allocation = BankAllocation(allocation_uuid)
    default_primary = next(code for code, _, primary in DEFAULT_ALLOCATION if primary)
    allocation.set(
        user_uuid=user_uuid,
        allocations=allocations,
        banks=banks,
        default_primary=default_primary,
        by=current_actor(),
    )
    store.save(allocation)
    return bank_allocation_get(user_uuid)


# --- reference and demo data ---------------------------------------------------------------------


def partner_banks_seed() -> None:
    """The partner banks; an existing row (a limit changed by staff) is left as it is."""
    for position, (code, name, country) in enumerate(PARTNER_BANKS):
        PartnerBank.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "country": country,
                "insurance_limit": DEPOSIT_INSURANCE_EUR_CENTS,
                "insurance_currency": "EUR",
                "position": position,
            },
        )


def reference_data_seed() -> None:
    partner_banks_seed()
    basket_define(**GCU)


DEMO_WALLET = "GCU Wallet"


def demo_baskets_seed(*, users: dict) -> None:
    """GCU holdings for the demo customer (100 GCU) and Maria (25 GCU), next month's GCU
    composition vote with Maria's ballot, and Maria's own bank split. Runs once."""
    from apps.accounts.services import account_open
    from apps.payments.services import deposit_create

    if AccountView.objects.filter(owner=users["customer"], name=DEMO_WALLET).exists():
        return
    for role, amount in (("customer", 100_00), ("maria", 25_00)):
        account = account_open(name=DEMO_WALLET, owner_uuid=users[role].uuid)
        for asset_code, quantity in basket_compose_cost(GCU["code"], amount).items():
            deposit_create(
                account_uuid=account.uuid,
                amount=quantity,
                asset_code=asset_code,
                reference="Components for GCU",
            )
        basket_compose(account_uuid=account.uuid, basket_code=GCU["code"], amount=amount)
    poll = basket_vote_open(code=GCU["code"], month=_month_after(timezone.now().date()))
    vote_cast(
        poll_uuid=poll.uuid,
        user=users["maria"],
        allocations={"USD": "35", "EUR": "30", "GBP": "15", "CHF": "12", "JPY": "4", "XAU": "4"},
    )
    bank_allocation_set(
        user_uuid=users["maria"].uuid,
        allocations=[
            {"bank_code": "PAYSERA", "percentage": "50", "is_primary": True},
            {"bank_code": "WISE", "percentage": "50", "is_primary": False},
        ],
    )
