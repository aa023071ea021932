"""Fixtures and helpers of the operator-console tests.

Staff sign in with `force_login`, never `client.login`: django-axes' authentication backend needs
the request, which `client.login` does not pass. The login form itself is exercised over HTTP in
test_actions.py (lockout, TOTP).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.db import models
from django.test import Client, override_settings
from django.urls import reverse

from apps.accounts.models import Account
from apps.accounts.services import account_open
from apps.core.context import command_context
from apps.core.models import event_models
from apps.core.seeding import seed_reference_data
from apps.payments.models import MovementRequest, Transfer
from apps.payments.services import deposit_create, manual_movement_submit, transfer_create
from apps.users.models import User
from tests.factories import StaffFactory, UserFactory

ROLES = ("operator", "compliance", "administrator")

# Where an action lives in the admin: Django's bulk actions (`ModelAdmin.actions` and the site's
# own, i.e. delete_selected) run from the changelist's action menu; unfold's `actions_list` are
# buttons above the changelist, each with its own URL; `actions_row`, `actions_detail` and
# `actions_submit_line` are unfold's per-row, detail-page and save-line buttons.
BULK = "bulk"
UNFOLD_KINDS = ("actions_list", "actions_row", "actions_detail", "actions_submit_line")


def label(model: type[models.Model]) -> str:
    return model._meta.label


def changelist_url(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def declared_actions(model_admin: admin.ModelAdmin) -> dict[str, str]:
    """Every action a ModelAdmin declares, whoever may use it: {name: kind}."""
    found: dict[str, str] = {}
    if model_admin.actions is not None:  # `actions = None` switches off the site's actions too
        for name in model_admin.admin_site.actions:
            found[name[0] if isinstance(name, tuple) else name] = BULK
        for action in model_admin.actions:
            found[action if isinstance(action, str) else action.__name__] = BULK
    for kind in UNFOLD_KINDS:  # only unfold's ModelAdmin has them; third-party admins do not
        for entry in getattr(model_admin, kind, None) or ():
            # a name, or a dropdown {"title": ..., "items": [names]}
            for name in entry["items"] if isinstance(entry, dict) else [entry]:
                found[name] = kind
    return found


def site_actions() -> dict[tuple[str, str], str]:
    """Every action of the console: {(model label, action name): kind}."""
    return {
        (label(model), name): kind
        for model, model_admin in admin.site._registry.items()
        for name, kind in declared_actions(model_admin).items()
    }


def staff_actor(user: User) -> dict[str, str]:
    return {"type": "staff", "id": str(user.uuid)}


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def event_marks() -> dict[type[models.Model], int]:
    """The newest event id of every event table; `events_since` lists what came after."""
    return {model: model.objects.order_by("-id").values_list("id", flat=True).first() or 0
            for model in event_models()}  # fmt: skip


def events_since(marks: dict[type[models.Model], int]) -> list[Any]:
    rows = []
    for model, last_id in marks.items():
        rows.extend(model.objects.filter(id__gt=last_id).order_by("id"))
    return rows


def run_action(client: Client, model, action: str, selected, **fields) -> Any:
    """Run a bulk action as the browser does: pick the action and the rows on the changelist,
    get the confirmation page, then post it back with "apply" and the form's fields."""
    url = changelist_url(model)
    chosen = {"action": action, "_selected_action": [str(pk) for pk in selected]}
    page = client.post(url, chosen)
    assert page.status_code == 200, (action, page.status_code)
    assert "admin/action_form.html" in [t.name for t in page.templates], action
    for pk in chosen["_selected_action"]:
        assert f'name="_selected_action" value="{pk}"' in page.content.decode()
    response = client.post(url, {**chosen, "apply": "1", **fields}, follow=True)
    assert response.status_code == 200, (action, response.status_code)
    return response


def page_messages(response, *, errors_only: bool = False) -> list[str]:
    """The messages the page shows (a refused command is an error message)."""
    if not response.context:
        return []
    shown = response.context["messages"]
    return [str(m) for m in shown if not errors_only or m.level == messages.ERROR]


@pytest.fixture
def bank(db):
    """Reference data: assets, demo exchange rates, the custodian's settlement account."""
    seed_reference_data()


@pytest.fixture
def staff_member(db):
    """staff_member("operator") -> a staff user in that group; None -> staff in no group."""

    def make(role: str | None = None, **fields) -> User:
        user = StaffFactory(**fields)
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def customer(bank) -> User:
    return UserFactory(name="Ada Customer")


@pytest.fixture
def open_account(customer):
    """An account of the customer, funded by deposits (written by the system, not by staff)."""

    def make(name: str = "Main", funded: dict[str, int] | None = None) -> Account:
        account = account_open(name=name, owner_uuid=customer.uuid)
        for asset_code, amount in (funded or {}).items():
            deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset_code)
        return Account.objects.get(uuid=account.uuid)

    return make


def balance(account_uuid: uuid.UUID, asset_code: str) -> int:
    row = Account.objects.get(uuid=account_uuid).balances.filter(asset_code=asset_code).first()
    return row.balance if row else 0


@dataclass
class Ledger:
    """A small bank for the actions to work on."""

    funded: Account  # 475.00 USD: 500.00 deposited, 25.00 sent in `transfer`
    empty: Account  # nothing held: closable
    transfer: Transfer  # 25.00 USD from `funded` to a third account, reversible
    request: MovementRequest  # a pending deposit made by `maker`
    maker: User


@pytest.fixture
def ledger(open_account, staff_member) -> Ledger:
    funded = open_account("Funded", funded={"USD": 50_000})
    empty = open_account("Empty")
    other = open_account("Receiver")
    transfer = transfer_create(
        from_account=funded.uuid, to_account=other.uuid, amount=2_500, asset_code="USD"
    )
    maker = staff_member("operator")
    with (
        override_settings(MAKER_CHECKER_THRESHOLD_USD=100),
        command_context(actor=staff_actor(maker)),
    ):
        outcome = manual_movement_submit(
            kind="deposit",
            account_uuid=funded.uuid,
            asset_code="USD",
            amount=10_000,
            reason="cash at the counter",
        )
    assert outcome.request is not None
    return Ledger(
        funded=Account.objects.get(uuid=funded.uuid),
        empty=Account.objects.get(uuid=empty.uuid),
        transfer=Transfer.objects.get(uuid=transfer.uuid),
        request=outcome.request,
        maker=maker,
    )
