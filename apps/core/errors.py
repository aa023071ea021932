"""Domain errors with stable codes.

A `DomainError` is a broken business rule: the command changed nothing and the caller gets the
error's `code` (stable, part of the API contract), a human message and optional details. The API
maps every DomainError to HTTP 422 unless the class says otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "DOMAIN_ERROR"
    default_message: ClassVar[str] = "The request breaks a business rule."
    http_status: ClassVar[int] = 422

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(DomainError):
    """An object that does not exist, or that the caller may not see (existence is not revealed)."""

    code = "NOT_FOUND"
    default_message = "Not found."
    http_status = 404


class AggregateNotFound(NotFound):
    default_message = "No such aggregate."


class ConcurrencyError(Exception):
    """Another writer appended to the same aggregate first; the command may be retried.

    Not a DomainError: the service layer retries it a bounded number of times and it reaches a
    caller only when every retry lost the race.
    """


class InvalidInput(DomainError):
    """Input the API's serializers would have refused; services check it too (HTTP 400)."""

    code = "VALIDATION_ERROR"
    default_message = "The request is invalid; see details."
    http_status = 400


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request."
    http_status = 409


class IdempotencyKeyInFlight(IdempotencyKeyReused):
    default_message = "A request with this Idempotency-Key is still being processed."


# --- the business-rule codes of API.md (HTTP 422) -----------------------------------------------


class InsufficientFunds(DomainError):
    code = "INSUFFICIENT_FUNDS"
    default_message = "The account does not hold enough of this asset."


class AccountFrozen(DomainError):
    code = "ACCOUNT_FROZEN"
    default_message = "The account is frozen."


class SourceAccountFrozen(AccountFrozen):
    code = "SOURCE_ACCOUNT_FROZEN"
    default_message = "The source account is frozen."


class DestinationAccountFrozen(AccountFrozen):
    code = "DESTINATION_ACCOUNT_FROZEN"
    default_message = "The destination account is frozen."


class SameAccount(DomainError):
    code = "SAME_ACCOUNT"
    default_message = "Source and destination are the same account."


class AccountClosed(DomainError):
    code = "ACCOUNT_CLOSED"
    default_message = "The account is closed."


class AccountHasBalance(DomainError):
    code = "ACCOUNT_HAS_BALANCE"
    default_message = "The account still holds money; every balance must be zero to close it."


class AccountAlreadyFrozen(DomainError):
    code = "ACCOUNT_ALREADY_FROZEN"
    default_message = "The account is already frozen."


class AccountNotFrozen(DomainError):
    code = "ACCOUNT_NOT_FROZEN"
    default_message = "The account is not frozen."


class AssetNotFound(DomainError):
    code = "ASSET_NOT_FOUND"
    default_message = "No such asset."


class AssetInactive(DomainError):
    code = "ASSET_INACTIVE"
    default_message = "The asset is not active."


class ExchangeRateNotFound(DomainError):
    code = "EXCHANGE_RATE_NOT_FOUND"
    default_message = "No current exchange rate for this pair."


class TransferAlreadyReversed(DomainError):
    code = "TRANSFER_ALREADY_REVERSED"
    default_message = "The transfer has already been reversed."


class MakerCannotDecide(DomainError):
    code = "MAKER_CANNOT_DECIDE"
    default_message = "The staff member who made a request cannot approve or reject it."
    http_status = 403


class MovementAlreadyDecided(DomainError):
    code = "MOVEMENT_ALREADY_DECIDED"
    default_message = "The request has already been approved or rejected."


class TransferNotReversible(DomainError):
    code = "TRANSFER_NOT_REVERSIBLE"
    default_message = "The transfer cannot be reversed."


class AmountTooLarge(DomainError):
    code = "AMOUNT_TOO_LARGE"
    default_message = "The amount is over the asset's maximum per operation or per balance."


class AssetNotDepositable(DomainError):
    code = "ASSET_NOT_DEPOSITABLE"
    default_message = "The custodian does not hold this asset; it cannot be deposited or withdrawn."


class ApprovalRequired(DomainError):
    code = "APPROVAL_REQUIRED"
    default_message = "This movement needs a second staff member's approval."


class RatePendingApproval(DomainError):
    code = "RATE_PENDING_APPROVAL"
    default_message = "The rate is outside its band from the reference and awaits approval."


class UnbalancedEntry(DomainError):
    """A journal entry whose legs do not sum to zero per asset: a programming error in the
    service that built it, refused before anything is written."""

    code = "UNBALANCED_ENTRY"
    default_message = "The journal entry does not balance."
    http_status = 500


class AccountHasPendingMovements(DomainError):
    code = "ACCOUNT_HAS_PENDING_MOVEMENTS"
    default_message = "The account has deposits or withdrawals in progress; it cannot be closed."


# --- governance (API.md) ---------------------------------------------------------------------


class PollNotActive(DomainError):
    code = "POLL_NOT_ACTIVE"
    default_message = "The poll is not open for voting."


class AlreadyVoted(DomainError):
    code = "ALREADY_VOTED"
    default_message = "You have already voted in this poll."


class NoVotingPower(DomainError):
    code = "NO_VOTING_POWER"
    default_message = "You have no voting power in this poll."


class InvalidOptions(DomainError):
    code = "INVALID_OPTIONS"
    default_message = "The selected options are not a valid ballot for this poll."


# --- baskets and bank allocation -------------------------------------------------------------


class BasketInactive(DomainError):
    code = "BASKET_INACTIVE"
    default_message = "The basket is not active."


class BasketNotDynamic(DomainError):
    code = "BASKET_NOT_DYNAMIC"
    default_message = "Only a dynamic basket can be rebalanced or change its composition."


class BasketValueNotPositive(DomainError):
    code = "BASKET_VALUE_NOT_POSITIVE"
    default_message = "The basket has no value above zero; it cannot be rebalanced."


class InvalidComposition(DomainError):
    code = "INVALID_COMPOSITION"
    default_message = "The basket composition breaks its rules (weights, bounds, sum of 100)."


class InvalidBankAllocation(DomainError):
    code = "INVALID_BANK_ALLOCATION"
    default_message = "The bank allocation is invalid."


class PrimaryBankRequired(DomainError):
    code = "PRIMARY_BANK_REQUIRED"
    default_message = "The primary bank cannot be removed from the allocation."
