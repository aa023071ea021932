"""The custodian connector protocol: what FinAegis asks of a bank that holds customer money.

Every connector (the mock bank, a real bank's API client) implements `CustodianConnector`. The
runtime never calls one bare: the registry wraps it in retries with backoff and a circuit
breaker (see `resilience.py`). Two rules every connector must keep, because the workflows
depend on them:

- `initiate_transfer` is idempotent by `TransferRequest.reference`: the same reference returns
  the transfer already made instead of making another (a retry after a timeout is safe);
- failures say what they are: `CustodianUnavailable` / `CustodianTimeout` when the custodian
  could not be reached or did not answer (the outcome of a write is then unknown, and a retry
  with the same reference finds out), `CustodianRejected` when it answered no.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from apps.core.errors import DomainError, NotFound

PENDING = "pending"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"


class CustodianError(DomainError):
    code = "CUSTODIAN_ERROR"
    default_message = "The custodian could not do this."
    http_status = 502


class CustodianTransientError(CustodianError):
    """The custodian did not answer: try again later (with the same reference)."""


class CustodianUnavailable(CustodianTransientError):
    code = "CUSTODIAN_UNAVAILABLE"
    default_message = "The custodian is unavailable."
    http_status = 503


class CustodianTimeout(CustodianTransientError):
    code = "CUSTODIAN_TIMEOUT"
    default_message = "The custodian did not answer in time."
    http_status = 504


class CircuitOpen(CustodianTransientError):
    """Calls are not even tried: the custodian failed too often just now."""

    code = "CUSTODIAN_CIRCUIT_OPEN"
    default_message = "The custodian failed repeatedly; calls are paused for a while."
    http_status = 503

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_at: dt.datetime | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, details=details)
        self.retry_at = retry_at  # when the breaker lets a trial call through


class CustodianRejected(CustodianError):
    """The custodian answered and refused (unknown account, insufficient funds there, ...)."""

    code = "CUSTODIAN_REJECTED"
    default_message = "The custodian refused the request."
    http_status = 422


class UnknownCustodian(NotFound):
    default_message = "No custodian is configured under this code."


@dataclass(frozen=True)
class Balance:
    account_id: str
    asset_code: str
    amount: int  # minor units


@dataclass(frozen=True)
class AccountInfo:
    account_id: str
    name: str
    status: str  # active | closed
    held_here: bool  # an account at this custodian (ours), not a counterparty elsewhere
    balances: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferRequest:
    from_account: str
    to_account: str
    asset_code: str
    amount: int  # minor units
    reference: str  # our idempotency key: the same reference is the same transfer
    description: str = ""


@dataclass(frozen=True)
class CustodianTransaction:
    transaction_id: str
    reference: str
    status: str  # pending | completed | failed | cancelled
    from_account: str
    to_account: str
    asset_code: str
    amount: int
    created_at: dt.datetime
    completed_at: dt.datetime | None = None
    failure_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "reference": self.reference,
            "status": self.status,
            "from_account": self.from_account,
            "to_account": self.to_account,
            "asset_code": self.asset_code,
            "amount": self.amount,
            "created_at": self.created_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "failure_reason": self.failure_reason,
        }


@runtime_checkable
class CustodianConnector(Protocol):
    code: str  # the custodian's code in settings.CUSTODIANS
    settlement_account: str  # our omnibus account there, mirrored by the settlement account

    def get_balance(self, account_id: str, asset_code: str) -> Balance: ...

    def get_account_info(self, account_id: str) -> AccountInfo: ...

    def initiate_transfer(self, request: TransferRequest) -> CustodianTransaction: ...

    def get_transaction_status(self, transaction_id: str) -> CustodianTransaction: ...

    def cancel_transaction(self, transaction_id: str) -> CustodianTransaction: ...

    def get_supported_assets(self) -> list[str]: ...

    def validate_account(self, account_id: str) -> bool: ...

    def get_transaction_history(
        self, account_id: str, *, since: dt.datetime | None = None, limit: int = 100
    ) -> list[CustodianTransaction]: ...
