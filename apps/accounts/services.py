"""Write side of accounts: open, freeze, unfreeze, close, and the system accounts."""

from __future__ import annotations

import uuid

from django.conf import settings
from guardian.shortcuts import assign_perm

from apps.accounts.aggregates import CUSTOMER, SYSTEM, Account
from apps.accounts.models import Account as AccountView
from apps.accounts.posting import accounts_lock
from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import AccountHasPendingMovements

# System accounts have fixed uuids derived from their code, so every installation agrees on them
# and reference data can be loaded any number of times.
SYSTEM_ACCOUNT_NAMESPACE = uuid.UUID("5b0c7a8e-31d4-4c51-9d0a-0f8f1c6a2e11")
FEES = "fees"
FX_POSITION = "fx_position"


def settlement_code(custodian: str) -> str:
    return f"settlement:{custodian}"


def system_account_uuid(code: str) -> uuid.UUID:
    return uuid.uuid5(SYSTEM_ACCOUNT_NAMESPACE, code)


def system_account_codes() -> list[str]:
    custodians = settings.CUSTODIANS
    return [*(settlement_code(c) for c in custodians), FEES, FX_POSITION]


OWNER_PERMISSIONS = (
    "accounts.view_account",
    "accounts.transact_account",
    "accounts.close_account",
)


@store.command
def account_open(
    *, name: str, owner_uuid: uuid.UUID | None, account_uuid: uuid.UUID | None = None
) -> AccountView:
    """Open a customer account; its owner gets the object permissions to use it."""
    account = Account(account_uuid or uuid.uuid4())
    account.open(name=name, owner_uuid=owner_uuid, kind=CUSTOMER, system_code=None)
    store.save(account)
    view = AccountView.objects.select_related("owner").get(uuid=account.uuid)
    if view.owner is not None:
        for permission in OWNER_PERMISSIONS:
            assign_perm(permission, view.owner, view)
    return view


@store.command
def system_account_ensure(*, code: str, name: str) -> AccountView:
    """Open the system account `code` unless it exists (reference data; never by hand)."""
    account_uuid = system_account_uuid(code)
    existing = AccountView.objects.filter(uuid=account_uuid).first()
    if existing is not None:
        return existing
    account = Account(account_uuid)
    account.open(name=name, owner_uuid=None, kind=SYSTEM, system_code=code)
    store.save(account)
    return AccountView.objects.get(uuid=account_uuid)


def system_accounts_seed() -> None:
    names = {FEES: "Fee income", FX_POSITION: "FX position"}
    for code in system_account_codes():
        default = f"Settlement with {code.split(':', 1)[-1]}"
        system_account_ensure(code=code, name=names.get(code, default))


@store.command
def account_freeze(*, account_uuid: uuid.UUID, reason: str) -> AccountView:
    account = accounts_lock([account_uuid])[account_uuid]
    account.freeze(reason=reason, by=current_actor())
    store.save(account)
    return AccountView.objects.get(uuid=account_uuid)


@store.command
def account_unfreeze(*, account_uuid: uuid.UUID, reason: str = "") -> AccountView:
    account = accounts_lock([account_uuid])[account_uuid]
    account.unfreeze(reason=reason, by=current_actor())
    store.save(account)
    return AccountView.objects.get(uuid=account_uuid)


@store.command
def account_close(*, account_uuid: uuid.UUID, reason: str = "") -> AccountView:
    from apps.custodians.selectors import account_has_pending_movements

    account = accounts_lock([account_uuid])[account_uuid]
    # A deposit or withdrawal in progress may still credit the account (money arriving, a
    # payout credited back): closing it now would strand that money.
    if account_has_pending_movements(account_uuid):
        raise AccountHasPendingMovements(details={"account": str(account_uuid)})
    account.close(by=current_actor(), reason=reason)
    store.save(account)
    return AccountView.objects.get(uuid=account_uuid)
