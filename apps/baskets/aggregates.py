"""The Basket, BasketOperation and BankAllocation aggregates, and the basket arithmetic.

Pure Python: the services pass in the time, the basket's value (from the rates), the asset
precisions and the partner banks. State holds JSON values only (weights as two-decimal strings,
datetimes as ISO strings) so the default snapshot works.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

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
from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import (
    BasketInactive,
    BasketNotDynamic,
    BasketValueNotPositive,
    DomainError,
    InvalidBankAllocation,
    InvalidComposition,
    InvalidInput,
    PrimaryBankRequired,
)
from apps.governance.aggregates import parse_percent, percent_text

# Fixed forever: the uuids of baskets and bank allocations are derived from it.
NAMESPACE = uuid.UUID("a3d5e0c4-2b8f-4f61-9c7e-5d1a6b0f4e27")

FIXED, DYNAMIC = "fixed", "dynamic"
BASKET_TYPES = (FIXED, DYNAMIC)
DAILY, WEEKLY, MONTHLY, QUARTERLY, NEVER = "daily", "weekly", "monthly", "quarterly", "never"
FREQUENCIES = (DAILY, WEEKLY, MONTHLY, QUARTERLY, NEVER)

HUNDRED = Decimal(100)
CENT = Decimal("0.01")
WEIGHT_TOLERANCE = CENT  # a composition's weights sum to 100 within +-0.01
MAX_DIVERSIFIED_SHARE = Decimal(60)
# A component's quantity per basket minor unit is recorded to this many decimal places.
QUANTITY_PLACES = 24
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)


class BasketAlreadyDefined(DomainError):
    code = "BASKET_ALREADY_DEFINED"
    default_message = "A basket with this code is already defined differently."


class BasketReserveShort(DomainError):
    """More units to take apart than the reserve issued: units that came from elsewhere (a
    conversion sold by the FX position) are not backed by the reserve, and paying them out
    would take the backing of the units it did issue."""

    code = "BASKET_RESERVE_SHORT"
    default_message = "The basket's reserve did not issue that many units."
    http_status = 409


def basket_uuid(code: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"basket:{code}")


def bank_allocation_uuid(user_uuid: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"bank-allocation:{user_uuid}")


def reserve_account_code(basket_code: str) -> str:
    """The system account code of a basket's reserve (apps.accounts system accounts)."""
    return f"basket_reserve:{basket_code}"


# --- compositions --------------------------------------------------------------------------------


def normalised_components(components: Any, basket_code: str) -> list[dict[str, str]]:
    """Check a basket's components: each asset once (not the basket itself), min <= weight <=
    max within 0-100 with two decimals, weights summing to 100 (+-0.01), and bounds that allow
    a sum of 100. Returns them with two-decimal strings."""
    if not isinstance(components, list | tuple) or not components:
        raise InvalidComposition(details={"components": ["at least one component"]})
    problems: list[str] = []
    normalised: list[dict[str, str]] = []
    for index, component in enumerate(components):
        if not isinstance(component, Mapping) or not isinstance(component.get("asset_code"), str):
            problems.append(f"component {index}: an object with asset_code and weights")
            continue
        code = component["asset_code"]
        weight = parse_percent(component.get("weight"))
        low = parse_percent(component.get("min_weight", 0))
        high = parse_percent(component.get("max_weight", 100))
        if code == basket_code:
            problems.append(f"{code}: a basket cannot contain itself")
        elif weight is None or low is None or high is None:
            problems.append(f"{code}: weights are percentages from 0 to 100, two decimals")
        elif not low <= weight <= high:
            problems.append(f"{code}: needs min_weight <= weight <= max_weight")
        else:
            normalised.append(
                {
                    "asset_code": code,
                    "weight": percent_text(weight),
                    "min_weight": percent_text(low),
                    "max_weight": percent_text(high),
                }
            )
    codes = [c["asset_code"] for c in normalised]
    if len(set(codes)) != len(codes):
        problems.append("each asset may appear once")
    if not problems:
        total = sum((Decimal(c["weight"]) for c in normalised), Decimal(0))
        if abs(total - HUNDRED) > WEIGHT_TOLERANCE:
            problems.append(f"the weights must sum to 100 (+-0.01), not {total}")
        lows = sum((Decimal(c["min_weight"]) for c in normalised), Decimal(0))
        highs = sum((Decimal(c["max_weight"]) for c in normalised), Decimal(0))
        if not lows <= HUNDRED <= highs:
            problems.append("the bounds must allow weights summing to 100")
    if problems:
        raise InvalidComposition(details={"components": problems})
    return normalised


def _bounds(components: list[Mapping[str, str]]) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        c["asset_code"]: (Decimal(c["min_weight"]), Decimal(c["max_weight"])) for c in components
    }


def _absorb_drift(
    weights: dict[str, Decimal], bounds: Mapping[str, tuple[Decimal, Decimal]]
) -> dict[str, Decimal]:
    """Give the rounding drift (100 - sum) to the largest weight that stays within its bounds
    (ties: the first component); the result sums to exactly 100."""
    drift = HUNDRED - sum(weights.values(), Decimal(0))
    if not drift:
        return weights
    order = sorted(weights, key=lambda code: (-weights[code], list(weights).index(code)))
    for code in order:
        low, high = bounds[code]
        if low <= weights[code] + drift <= high:
            return {**weights, code: weights[code] + drift}
    raise InvalidComposition(details={"components": ["the rounding drift fits no component"]})


def rebalanced_weights(components: list[Mapping[str, str]]) -> dict[str, Decimal]:
    """Clamp each weight into its bounds, then bring the sum back to 100 within the bounds:
    a shortfall is spread over the components in proportion to their room up to their
    maximum, an excess in proportion to their room down to their minimum. Two decimals,
    rounded half-even; the rounding drift goes to the largest weight."""
    bounds = _bounds(components)
    weights = {}
    for component in components:
        low, high = bounds[component["asset_code"]]
        weights[component["asset_code"]] = min(max(Decimal(component["weight"]), low), high)
    with localcontext() as ctx:
        ctx.prec = 60
        missing = HUNDRED - sum(weights.values(), Decimal(0))
        if missing:
            if missing > 0:
                room = {code: bounds[code][1] - w for code, w in weights.items()}
            else:
                room = {code: w - bounds[code][0] for code, w in weights.items()}
            total_room = sum(room.values(), Decimal(0))
            if total_room < abs(missing):
                raise InvalidComposition(
                    details={"components": ["the bounds do not allow weights summing to 100"]}
                )
            weights = {code: w + missing * room[code] / total_room for code, w in weights.items()}
        rounded = {code: w.quantize(CENT, rounding=ROUND_HALF_EVEN) for code, w in weights.items()}
    return _absorb_drift(rounded, bounds)


def composition_from_vote(
    *,
    totals: Mapping[str, str],
    total_power: int,
    options: list[Mapping[str, str]],
) -> dict[str, Decimal]:
    """The composition a closed allocation poll decided: each component's power-weighted
    average percentage (its total divided by the power cast), rounded half-even to two decimals,
    the rounding drift to the largest weight. Nobody voted: the options' default weights."""
    bounds = {
        o["id"]: (Decimal(o.get("min_weight", "0")), Decimal(o.get("max_weight", "100")))
        for o in options
    }
    if total_power <= 0:
        return {o["id"]: Decimal(o["default_weight"]) for o in options}
    with localcontext() as ctx:
        ctx.prec = 60
        averages = {
            o["id"]: (Decimal(totals.get(o["id"], "0")) * HUNDRED / total_power).quantize(
                CENT, rounding=ROUND_HALF_EVEN
            )
            for o in options
        }
    return _absorb_drift(averages, bounds)


def parse_unit_value(value: Any) -> Decimal:
    """A basket's initial value per unit: a positive decimal (string or integer, never float)."""
    parsed = None
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            parsed = Decimal(value)
        except ArithmeticError:
            parsed = None
    if parsed is None or not parsed.is_finite() or parsed <= 0 or parsed > 10**12:
        raise InvalidInput(
            details={"initial_value": ["a positive decimal (USD per unit) up to 10^12"]}
        )
    return parsed


def legacy_quantities(
    components: list[Mapping[str, Any]], *, basket_precision: int, precisions: Mapping[str, int]
) -> dict[str, Decimal]:
    """What a unit of a basket fixed before quantities were recorded holds: weight / 100 of
    each component's major unit per major basket unit (weights applied to unit quantities, as
    issued then; the first rebalance turns them into value shares)."""
    return {
        c["asset_code"]: (Decimal(c["weight"]) / HUNDRED).scaleb(
            precisions[c["asset_code"]] - basket_precision
        )
        for c in components
    }


def unit_value(
    quantities: Mapping[str, Decimal],
    *,
    prices: Mapping[str, Decimal],
    basket_precision: int,
    precisions: Mapping[str, int],
) -> Decimal:
    """The value of one major basket unit in the prices' currency: each component's quantity
    (minor units per basket minor unit) rescaled to major units, times its price. A component
    held at zero needs no price."""
    with localcontext() as ctx:
        ctx.prec = 60
        return sum(
            (
                quantity.scaleb(basket_precision - precisions[code]) * prices[code]
                for code, quantity in quantities.items()
                if quantity
            ),
            Decimal(0),
        )


def value_share_quantities(
    weights: Mapping[str, Decimal],
    *,
    value: Decimal,
    prices: Mapping[str, Decimal],
    basket_precision: int,
    precisions: Mapping[str, int],
) -> dict[str, Decimal]:
    """The quantity of each component per basket minor unit such that its share of the value
    `value` (of one major unit) is its weight: weight / 100 x value / price (the SDR method),
    in minor units per minor unit, rounded half-even to QUANTITY_PLACES decimal places."""
    quantities = {}
    for code, weight in weights.items():
        if not weight:
            quantities[code] = Decimal(0)
            continue
        with localcontext() as ctx:
            ctx.prec = 60
            exact = (weight / HUNDRED * value / prices[code]).scaleb(
                precisions[code] - basket_precision
            )
            quantities[code] = exact.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    return quantities


def component_amounts(
    *, amount: int, quantities: Mapping[str, Decimal], weights: Mapping[str, Decimal], kind: str
) -> list[tuple[str, int, Decimal]]:
    """The components of `amount` basket minor units: quantity x amount, rounded in the bank's
    favour: up for what a customer pays in (compose), down for what a customer is paid
    (decompose). The reserve keeps the residue, so it always holds at least what the
    outstanding units contain. A component that rounds to nothing is left out."""
    rounding = ROUND_CEILING if kind == "compose" else ROUND_FLOOR
    legs = []
    for code, quantity in quantities.items():
        with localcontext() as ctx:
            ctx.prec = 80
            units = int((quantity * amount).to_integral_value(rounding=rounding))
        if units > 0:
            legs.append((code, units, weights[code]))
    return legs


def reserve_moves(
    *, outstanding: int, old: Mapping[str, Decimal], new: Mapping[str, Decimal]
) -> dict[str, int]:
    """What the reserve receives (positive) or gives back (negative) of each component when the
    quantities change under `outstanding` units: outstanding x (new - old), rounded so the
    reserve ends with at least what the outstanding units need (more in: up; less out: down)."""
    moves = {}
    for code in new:
        with localcontext() as ctx:
            ctx.prec = 80
            exact = (new[code] - old.get(code, Decimal(0))) * outstanding
            move = int(exact.to_integral_value(rounding=ROUND_CEILING))
        if move:
            moves[code] = move
    return moves


def period_start(frequency: str, now: dt.datetime) -> dt.datetime | None:
    """The start (UTC) of the rebalancing period `now` is in; None for `never`."""
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == DAILY:
        return midnight
    if frequency == WEEKLY:
        return midnight - dt.timedelta(days=midnight.weekday())
    if frequency == MONTHLY:
        return midnight.replace(day=1)
    if frequency == QUARTERLY:
        return midnight.replace(month=(midnight.month - 1) // 3 * 3 + 1, day=1)
    return None


def rebalance_due(frequency: str, last_rebalanced_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Due once per period: when the basket was not rebalanced since its period began."""
    start = period_start(frequency, now)
    if start is None:
        return False
    return last_rebalanced_at is None or last_rebalanced_at < start


# --- bank allocation -----------------------------------------------------------------------------


def normalised_allocation(
    entries: Any, *, banks: Collection[str], current_primary: str | None
) -> list[dict[str, Any]]:
    """Check a split across partner banks: known banks, each once, percentages above zero
    (two decimals) summing to 100, exactly one primary, and the current primary kept."""
    if not isinstance(entries, list | tuple) or not entries:
        raise InvalidBankAllocation(details={"allocations": ["at least one bank"]})
    problems: list[str] = []
    normalised = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"entry {index}: an object with bank_code, percentage, is_primary")
            continue
        code, share = entry.get("bank_code"), parse_percent(entry.get("percentage"))
        if code not in banks:
            problems.append(f"entry {index}: unknown bank {code!r}")
        elif share is None or share <= 0:
            problems.append(f"{code}: a percentage above 0 and up to 100, two decimals")
        else:
            primary = entry.get("is_primary", False)
            normalised.append(
                {
                    "bank_code": code,
                    "percentage": percent_text(share),
                    "is_primary": primary is True,
                }
            )
    codes = [e["bank_code"] for e in normalised]
    if len(set(codes)) != len(codes):
        problems.append("each bank may appear once")
    if not problems:
        total = sum((Decimal(e["percentage"]) for e in normalised), Decimal(0))
        if total != HUNDRED:
            problems.append(f"the percentages must sum to 100, not {total}")
        if sum(e["is_primary"] for e in normalised) != 1:
            problems.append("exactly one bank must be primary")
    if problems:
        raise InvalidBankAllocation(details={"allocations": problems})
    if current_primary is not None and current_primary not in codes:
        raise PrimaryBankRequired(details={"bank_code": current_primary})
    return normalised


def is_diversified(allocations: list[Mapping[str, Any]]) -> bool:
    """At least two banks and none above 60%."""
    return len(allocations) >= 2 and all(
        Decimal(a["percentage"]) <= MAX_DIVERSIFIED_SHARE for a in allocations
    )


def distribution(amount: int, allocations: list[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Split an integer amount across the banks: each bank but the last gets its share rounded
    half-even, the last gets the remainder. Should those roundings together overshoot (tiny
    amounts, many banks), the shares are rounded down instead so nobody gets a negative amount."""
    for rounding in (ROUND_HALF_EVEN, ROUND_DOWN):
        shares = []
        with localcontext() as ctx:
            ctx.prec = 60
            for entry in allocations[:-1]:
                exact = Decimal(amount) * Decimal(entry["percentage"]) / HUNDRED
                shares.append(int(exact.to_integral_value(rounding=rounding)))
        last = amount - sum(shares)
        if last >= 0:
            break
    codes = [entry["bank_code"] for entry in allocations]
    return list(zip(codes, [*shares, last], strict=True))


# --- aggregates ----------------------------------------------------------------------------------


class Basket(AggregateRoot):
    """A basket asset: its components (weight and bounds), activity and rebalancing."""

    aggregate_type = "baskets.Basket"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.code = ""
        self.name = ""
        self.type = ""
        self.rebalance_frequency = ""
        self.components: list[dict[str, str]] = []
        self.reserve_account = ""
        self.is_active = False
        self.last_rebalanced_at: str | None = None
        # Per component, its quantity per basket minor unit (in its own minor units) as a
        # decimal string; None for a basket defined before quantities were recorded.
        self.quantities: dict[str, str] | None = None
        self.pending: dict[str, Any] | None = None  # {"components", "effective_on", "poll_uuid"}

    @classmethod
    def for_code(cls, code: str) -> Basket:
        return cls(basket_uuid(code))

    @property
    def is_defined(self) -> bool:
        return bool(self.code)

    @property
    def weights(self) -> dict[str, Decimal]:
        return {c["asset_code"]: Decimal(c["weight"]) for c in self.components}

    # --- commands ----------------------------------------------------------------------------

    def define(
        self,
        *,
        code: str,
        name: str,
        type: str,
        rebalance_frequency: str,
        components: Any,
        reserve_account: uuid.UUID,
        by: dict[str, Any],
    ) -> bool:
        """Record the definition; False (nothing recorded) when the same one exists."""
        errors: dict[str, list[str]] = {}
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            errors["name"] = ["a name of 1 to 100 characters"]
        if type not in BASKET_TYPES:
            errors["type"] = [f"one of {', '.join(BASKET_TYPES)}"]
        if rebalance_frequency not in FREQUENCIES:
            errors["rebalance_frequency"] = [f"one of {', '.join(FREQUENCIES)}"]
        if errors:
            raise InvalidInput(details=errors)
        normalised = normalised_components(components, code)
        if self.is_defined:
            wanted = (code, name, type, rebalance_frequency)
            defined = (self.code, self.name, self.type, self.rebalance_frequency)
            # Reference data is loaded on every start: the same basket again changes nothing,
            # whatever its composition has become since (votes move the weights).
            if wanted == defined and [c["asset_code"] for c in normalised] == [
                c["asset_code"] for c in self.components
            ]:
                return False
            raise BasketAlreadyDefined(details={"basket_code": self.code})
        self.record(
            BasketDefined(
                code=code,
                name=name,
                type=type,
                rebalance_frequency=rebalance_frequency,
                components=normalised,
                reserve_account=reserve_account,
                by=by,
            )
        )
        return True

    def activate(self, *, reason: str, now: dt.datetime, by: dict[str, Any]) -> None:
        if self.is_active:
            raise InvalidInput("The basket is already active.", details={"basket": [self.code]})
        self.record(BasketActivated(reason=reason, at=now, by=by))

    def deactivate(self, *, reason: str, now: dt.datetime, by: dict[str, Any]) -> None:
        if not self.is_active:
            raise BasketInactive(details={"basket_code": self.code})
        self.record(BasketDeactivated(reason=reason, at=now, by=by))

    def require_active(self) -> None:
        if not self.is_active:
            raise BasketInactive(details={"basket_code": self.code})

    def _require_dynamic(self) -> None:
        if self.type != DYNAMIC:
            raise BasketNotDynamic(details={"basket_code": self.code, "type": self.type})

    def _checked_weights(self, weights: Mapping[str, Any]) -> dict[str, Decimal]:
        """New weights for exactly the current components, within their bounds."""
        if set(weights) != {c["asset_code"] for c in self.components}:
            raise InvalidComposition(
                details={"components": ["weights are needed for exactly the basket's assets"]}
            )
        candidate = [
            {**c, "weight": weights[c["asset_code"]]} for c in self.components
        ]  # bounds unchanged
        checked = normalised_components(candidate, self.code)
        return {c["asset_code"]: Decimal(c["weight"]) for c in checked}

    def schedule_composition(
        self,
        *,
        weights: Mapping[str, Any],
        effective_on: dt.date,
        poll_uuid: uuid.UUID | None,
        now: dt.datetime,
        by: dict[str, Any],
    ) -> None:
        self._require_dynamic()
        checked = self._checked_weights(weights)
        self.record(
            BasketCompositionScheduled(
                components=[
                    {"asset_code": code, "weight": percent_text(w)} for code, w in checked.items()
                ],
                effective_on=effective_on,
                poll_uuid=poll_uuid,
                at=now,
                by=by,
            )
        )

    def change_composition(
        self,
        *,
        weights: Mapping[str, Any],
        reason: str,
        poll_uuid: uuid.UUID | None,
        now: dt.datetime,
        by: dict[str, Any],
    ) -> None:
        self._require_dynamic()
        checked = self._checked_weights(weights)
        self.record(
            BasketCompositionChanged(
                components=[
                    {
                        "asset_code": c["asset_code"],
                        "old_weight": c["weight"],
                        "new_weight": percent_text(checked[c["asset_code"]]),
                    }
                    for c in self.components
                ],
                reason=reason,
                poll_uuid=poll_uuid,
                at=now,
                by=by,
            )
        )

    def apply_scheduled(self, *, now: dt.datetime, by: dict[str, Any]) -> bool:
        """Apply the scheduled composition once its day has come; False when none is due."""
        pending = self.pending
        if pending is None or dt.date.fromisoformat(pending["effective_on"]) > now.date():
            return False
        self.change_composition(
            weights={c["asset_code"]: c["weight"] for c in pending["components"]},
            reason=f"composition effective on {pending['effective_on']}",
            poll_uuid=uuid.UUID(pending["poll_uuid"]) if pending["poll_uuid"] else None,
            now=now,
            by=by,
        )
        return True

    def rebalance(self, *, value: Decimal, now: dt.datetime, by: dict[str, Any]) -> list[dict]:
        """Dynamic baskets with a value above zero: weights clamped into their bounds and
        normalised to 100 within them. Returns the adjustments."""
        self._require_dynamic()
        if value <= 0:
            raise BasketValueNotPositive(details={"basket_code": self.code, "value": str(value)})
        new = rebalanced_weights(self.components)
        adjustments = [
            {
                "asset_code": c["asset_code"],
                "old_weight": c["weight"],
                "new_weight": percent_text(new[c["asset_code"]]),
                "adjustment": percent_text(new[c["asset_code"]] - Decimal(c["weight"])),
            }
            for c in self.components
        ]
        self.record(BasketRebalanced(adjustments=adjustments, value=value, at=now, by=by))
        return adjustments

    def unit_quantities(self, precisions: Mapping[str, int]) -> dict[str, Decimal]:
        """What one basket minor unit holds of each component, in the component's minor units."""
        if self.quantities is None:
            return legacy_quantities(
                self.components, basket_precision=precisions[self.code], precisions=precisions
            )
        return {c["asset_code"]: Decimal(self.quantities[c["asset_code"]]) for c in self.components}

    def fix_quantities(
        self,
        *,
        prices: Mapping[str, Decimal],
        precisions: Mapping[str, int],
        outstanding: int,
        reserve_account: uuid.UUID,
        fx_account: uuid.UUID,
        entry_uuid: uuid.UUID,
        reason: str,
        now: dt.datetime,
        by: dict[str, Any],
        initial_value: Decimal | None = None,
    ) -> dict[str, int]:
        """Recompute each component's quantity so that its share of a unit's value is its
        weight, at `prices` (mid, USD per major unit), keeping the value of a unit as it is
        (holders keep their value), or at `initial_value` for a new basket. Returns what the
        reserve must receive (positive) or give back of each component for the `outstanding`
        units, moved by the entry `entry_uuid` (recorded only when something moves)."""
        basket_precision = precisions[self.code]
        old = {} if initial_value is not None else self.unit_quantities(precisions)
        value = (
            initial_value
            if initial_value is not None
            else unit_value(
                old, prices=prices, basket_precision=basket_precision, precisions=precisions
            )
        )
        if value <= 0:
            raise BasketValueNotPositive(details={"basket_code": self.code, "value": str(value)})
        new = value_share_quantities(
            self.weights,
            value=value,
            prices=prices,
            basket_precision=basket_precision,
            precisions=precisions,
        )
        moves = reserve_moves(outstanding=outstanding, old=old, new=new)
        self.record(
            BasketQuantitiesFixed(
                components=[
                    {
                        "asset_code": code,
                        "weight": percent_text(self.weights[code]),
                        "price": str(prices[code]) if code in prices else None,
                        "old_quantity": str(old[code]) if code in old else None,
                        "new_quantity": str(new[code]),
                        "reserve_move": moves.get(code, 0),
                    }
                    for code in new
                ],
                unit_value=value,
                outstanding=outstanding,
                reserve_account=reserve_account,
                fx_account=fx_account,
                entry_uuid=entry_uuid if moves else None,
                reason=reason,
                at=now,
                by=by,
            )
        )
        return moves

    # --- state -------------------------------------------------------------------------------

    @applies(BasketDefined)
    def _defined(self, evt: BasketDefined) -> None:
        self.code = evt.code
        self.name = evt.name
        self.type = evt.type
        self.rebalance_frequency = evt.rebalance_frequency
        self.components = [dict(c) for c in evt.components]
        self.reserve_account = str(evt.reserve_account)
        self.is_active = True

    @applies(BasketActivated)
    def _activated(self, evt: BasketActivated) -> None:
        self.is_active = True

    @applies(BasketDeactivated)
    def _deactivated(self, evt: BasketDeactivated) -> None:
        self.is_active = False

    @applies(BasketCompositionScheduled)
    def _scheduled(self, evt: BasketCompositionScheduled) -> None:
        self.pending = {
            "components": [dict(c) for c in evt.components],
            "effective_on": evt.effective_on.isoformat(),
            "poll_uuid": str(evt.poll_uuid) if evt.poll_uuid else None,
        }

    @applies(BasketCompositionChanged)
    def _changed(self, evt: BasketCompositionChanged) -> None:
        new = {c["asset_code"]: c["new_weight"] for c in evt.components}
        self.components = [{**c, "weight": new[c["asset_code"]]} for c in self.components]
        self.pending = None

    @applies(BasketRebalanced)
    def _rebalanced(self, evt: BasketRebalanced) -> None:
        new = {a["asset_code"]: a["new_weight"] for a in evt.adjustments}
        self.components = [{**c, "weight": new[c["asset_code"]]} for c in self.components]
        self.last_rebalanced_at = evt.at.isoformat()

    @applies(BasketQuantitiesFixed)
    def _quantities_fixed(self, evt: BasketQuantitiesFixed) -> None:
        self.quantities = {c["asset_code"]: c["new_quantity"] for c in evt.components}


class BasketOperation(AggregateRoot):
    """One compose or decompose: a balanced journal entry between an account and the reserve."""

    aggregate_type = "baskets.BasketOperation"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.kind = ""

    def record_operation(
        self,
        *,
        kind: str,
        account_uuid: uuid.UUID,
        basket_code: str,
        amount: int,
        legs: list[tuple[str, int, Decimal]],
        quantities: Mapping[str, Decimal],
        reserve_account: uuid.UUID,
        by: dict[str, Any],
    ) -> None:
        if self.kind:
            raise InvalidInput("This operation is already recorded.")
        event_class = {"compose": BasketComposed, "decompose": BasketDecomposed}[kind]
        self.record(
            event_class(
                account_uuid=account_uuid,
                basket_code=basket_code,
                amount=amount,
                components=[
                    {
                        "asset_code": code,
                        "amount": units,
                        "weight": percent_text(weight),
                        "quantity": str(quantities[code]),
                    }
                    for code, units, weight in legs
                ],
                reserve_account=reserve_account,
                by=by,
            )
        )

    @applies(BasketComposed)
    def _composed(self, evt: BasketComposed) -> None:
        self.kind = "compose"

    @applies(BasketDecomposed)
    def _decomposed(self, evt: BasketDecomposed) -> None:
        self.kind = "decompose"


class BankAllocation(AggregateRoot):
    """One user's split of deposits across the partner banks."""

    aggregate_type = "baskets.BankAllocation"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.allocations: list[dict[str, Any]] = []

    @classmethod
    def for_user(cls, user_uuid: uuid.UUID) -> BankAllocation:
        return cls(bank_allocation_uuid(user_uuid))

    @property
    def primary(self) -> str | None:
        return next((a["bank_code"] for a in self.allocations if a["is_primary"]), None)

    def set(
        self,
        *,
        user_uuid: uuid.UUID,
        allocations: Any,
        banks: Collection[str],
        default_primary: str,
        by: dict[str, Any],
    ) -> None:
        """Replace the split; the primary bank (the default's until one is chosen) stays."""
        normalised = normalised_allocation(
            allocations, banks=banks, current_primary=self.primary or default_primary
        )
        self.record(BankAllocationSet(user_uuid=user_uuid, allocations=normalised, by=by))

    @applies(BankAllocationSet)
    def _set(self, evt: BankAllocationSet) -> None:
        self.allocations = [dict(a) for a in evt.allocations]
