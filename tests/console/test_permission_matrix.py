"""The permission matrix of the console: per role, which actions each changelist offers, and that
an action a role lacks does nothing when it is posted anyway.

EXPECTED names every action of every registered admin (Django's bulk actions, the site's
delete_selected, unfold's actions_list and its other button lists). An action added to the
console without a line here fails `test_every_action_of_the_console_is_in_the_table`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.services import account_freeze
from apps.assets.models import ExchangeRate
from apps.assets.services import asset_deactivate
from apps.core.models import event_models
from apps.users.services import token_create
from tests.console.conftest import (
    BULK,
    ROLES,
    changelist_url,
    label,
    signed_in,
    site_actions,
)
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

OPERATOR, COMPLIANCE, ADMINISTRATOR = ROLES
NO_GROUP = "staff without group"
SUPERUSER = "superuser"
EVERY_ROLE = (*ROLES, NO_GROUP, SUPERUSER)

_FREEZERS = {OPERATOR, COMPLIANCE, ADMINISTRATOR, SUPERUSER}
_MONEY_MOVERS = {OPERATOR, ADMINISTRATOR, SUPERUSER}
_CHECKERS = {OPERATOR, ADMINISTRATOR, SUPERUSER}
_ADMINISTRATORS = {ADMINISTRATOR, SUPERUSER}

# (model, action) -> the roles whose changelist offers it (and who may run it).
EXPECTED: dict[tuple[str, str], set[str]] = {
    # Accounts: compliance may freeze but not move money; operators move money and freeze;
    # only administrators close.
    ("accounts.Account", "freeze"): _FREEZERS,
    ("accounts.Account", "unfreeze"): _FREEZERS,
    ("accounts.Account", "deposit"): _MONEY_MOVERS,
    ("accounts.Account", "withdraw"): _MONEY_MOVERS,
    ("accounts.Account", "close"): _ADMINISTRATORS,
    # Transfers: reversal is for compliance (investigations) and administrators.
    ("payments.Transfer", "reverse"): {COMPLIANCE, ADMINISTRATOR, SUPERUSER},
    # Maker-checker decisions: operators and administrators (never on their own request).
    ("payments.MovementRequest", "approve"): _CHECKERS,
    ("payments.MovementRequest", "reject"): _CHECKERS,
    # Reference data: administrators.
    ("assets.Asset", "activate_assets"): _ADMINISTRATORS,
    ("assets.Asset", "deactivate_assets"): _ADMINISTRATORS,
    ("assets.ExchangeRate", "deactivate_rates"): _ADMINISTRATORS,
    ("assets.ExchangeRate", "approve_rates"): _ADMINISTRATORS,  # a staff member not the maker
    ("assets.ExchangeRate", "reject_rates"): _ADMINISTRATORS,
    ("assets.ExchangeRate", "add_manual_rate"): _ADMINISTRATORS,  # unfold actions_list
    ("assets.ExchangeRate", "refresh_rates"): _ADMINISTRATORS,  # unfold actions_list
    # Governance: administrators run polls; compliance and administrators verify signatures.
    ("governance.Poll", "new_poll"): _ADMINISTRATORS,
    ("governance.Poll", "activate"): _ADMINISTRATORS,
    ("governance.Poll", "close"): _ADMINISTRATORS,
    ("governance.Poll", "cancel"): _ADMINISTRATORS,
    ("governance.Poll", "verify_signatures"): {COMPLIANCE, ADMINISTRATOR, SUPERUSER},
    ("governance.Vote", "verify_signatures"): {COMPLIANCE, ADMINISTRATOR, SUPERUSER},
    # The GCU basket: administrators.
    ("baskets.BasketAsset", "rebalance"): _ADMINISTRATORS,
    ("baskets.BasketAsset", "record_value"): _ADMINISTRATORS,
    ("baskets.BasketAsset", "activate"): _ADMINISTRATORS,
    ("baskets.BasketAsset", "deactivate"): _ADMINISTRATORS,
    # Workflows and custodians: operators and administrators run them; compliance resolves
    # discrepancies found by reconciliation.
    ("workflows.WorkflowRun", "retry"): _CHECKERS,
    ("workflows.WorkflowRun", "compensate"): _CHECKERS,
    ("custodians.CircuitBreakerState", "reset"): _CHECKERS,
    ("custodians.CustodianDiscrepancy", "resolve"): {COMPLIANCE, ADMINISTRATOR, SUPERUSER},
    # Housekeeping of third-party apps: no staff role has their permissions.
    ("django_celery_beat.PeriodicTask", "enable_tasks"): {SUPERUSER},
    ("django_celery_beat.PeriodicTask", "disable_tasks"): {SUPERUSER},
    ("django_celery_beat.PeriodicTask", "toggle_tasks"): {SUPERUSER},
    ("django_celery_beat.PeriodicTask", "run_tasks"): {SUPERUSER},
    ("axes.AccessAttempt", "cleanup_expired_attempts"): {SUPERUSER},
}
# Django's site-wide bulk delete: never on the ledger, its events or its read models (the
# console's ReadOnlyAdmin refuses deletion to superusers too); only superusers on the tables of
# access and scheduling.
DELETABLE_BY_SUPERUSERS = {
    "users.User",
    "auth.Group",
    "otp_totp.TOTPDevice",
    "axes.AccessAttempt",
    "axes.AccessLog",
    "axes.AccessFailureLog",
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.SolarSchedule",
    "django_celery_beat.ClockedSchedule",
}
for _model in admin.site._registry:
    EXPECTED[(label(_model), "delete_selected")] = (
        {SUPERUSER} if label(_model) in DELETABLE_BY_SUPERUSERS else set()
    )

# What the confirmation step of each action asks for; posted together with "apply".
FORM_FIELDS: dict[str, dict[str, str]] = {
    "freeze": {"reason": "suspicious activity"},
    "unfreeze": {"reason": "cleared"},
    "deposit": {"asset_code": "USD", "amount": "10.00", "reason": "cash"},
    "withdraw": {"asset_code": "USD", "amount": "10.00", "reason": "cash"},
    "close": {"reason": "customer left"},
    "reverse": {"reason": "mistake", "force": "on", "confirm": "on"},
    "approve": {"confirm": "on"},
    "reject": {"reason": "no"},
    "delete_selected": {"post": "yes"},
    "add_manual_rate": {"from_code": "EUR", "to_code": "USD", "rate": "2.5"},
    "retry": {"confirm": "on"},
    "reset": {"confirm": "on"},
    "compensate": {"reason": "custodian refused"},
    "resolve": {"note": "explained by the bank"},
}


@pytest.fixture
def role_users(staff_member) -> dict[str, Any]:
    users = {role: staff_member(role) for role in ROLES}
    users[NO_GROUP] = staff_member(None)
    users[SUPERUSER] = StaffFactory(is_superuser=True)
    return users


def _request_as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def _offered(model_admin, request) -> set[str]:
    """The actions the console offers this user on a model: none when its changelist is
    refused; else Django's get_actions and unfold's permitted buttons."""
    if not model_admin.has_view_or_change_permission(request):
        return set()
    offered = set(model_admin.get_actions(request))
    if hasattr(model_admin, "get_actions_list"):  # unfold's ModelAdmin
        buttons = [
            *model_admin.get_actions_list(request),
            *model_admin.get_actions_row(request),
            *model_admin.get_actions_detail(request, None),
            *model_admin.get_actions_submit_line(request, None),
        ]
        offered |= {action.method.__name__ for action in buttons}
    return offered


def _button_paths(actions_list) -> set[str]:
    """The URLs of unfold's buttons above a changelist (a dropdown holds "items")."""
    return {entry["path"] for item in actions_list or [] for entry in item.get("items", [item])}


def _expected_for(role: str, model) -> set[str]:
    return {n for (lbl, n), roles in EXPECTED.items() if lbl == label(model) and role in roles}


def test_every_action_of_the_console_is_in_the_table():
    declared = set(site_actions())
    unlisted = sorted(declared - set(EXPECTED))
    gone = sorted(set(EXPECTED) - declared)
    if unlisted or gone:
        pytest.fail(
            "EXPECTED is out of date.\n"
            + "".join(f"  declared but not in EXPECTED: {key}\n" for key in unlisted)
            + "".join(f"  in EXPECTED but declared by no admin: {key}\n" for key in gone)
        )


def test_the_roles_hold_the_permissions_the_table_assumes():
    """The groups come from data migrations; a changed grant shows here first."""
    perms = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
        for g in Group.objects.filter(name__in=ROLES).prefetch_related("permissions__content_type")
    }
    assert set(perms) == set(ROLES)
    assert "accounts.freeze_account" in perms[COMPLIANCE]
    assert "accounts.transact_account" not in perms[COMPLIANCE]
    assert {"accounts.transact_account", "accounts.freeze_account"} <= perms[OPERATOR]
    assert perms[OPERATOR] < perms[ADMINISTRATOR]
    assert perms[COMPLIANCE] < perms[ADMINISTRATOR]
    for role in ROLES:
        writes = {p for p in perms[role] if p.endswith("event") and ".view_" not in p}
        assert writes == set(), role


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_each_role_is_offered_exactly_its_actions(role_users, role):
    request = _request_as(role_users[role])
    offered = {
        label(model): _offered(model_admin, request)
        for model, model_admin in admin.site._registry.items()
    }
    wrong = [
        f"  {label(model)}: offered {sorted(offered[label(model)])}, "
        f"expected {sorted(_expected_for(role, model))}\n"
        for model in admin.site._registry
        if offered[label(model)] != _expected_for(role, model)
    ]
    if wrong:
        pytest.fail(f"{role} is offered other actions than EXPECTED says:\n" + "".join(wrong))


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_the_changelist_pages_show_the_same_actions(role_users, role):
    """What the pages render agrees with get_actions: the action menu and unfold's buttons."""
    client = signed_in(role_users[role])
    request = _request_as(role_users[role])
    site_wide = site_actions()
    for model, model_admin in admin.site._registry.items():
        response = client.get(changelist_url(model))
        expected = _expected_for(role, model)
        if not model_admin.has_view_or_change_permission(request):
            assert response.status_code == 403, (role, label(model))
            assert expected == set(), (role, label(model))
            continue
        assert response.status_code == 200, (role, label(model))
        menu = response.context.get("action_form")
        in_menu = {name for name, _ in menu.fields["action"].choices if name} if menu else set()
        paths = _button_paths(response.context.get("actions_list"))
        buttons = {
            name
            for (lbl, name), kind in site_wide.items()
            if lbl == label(model) and kind == "actions_list" and _action_url(model, name) in paths
        }
        assert in_menu | buttons == expected, (role, label(model))


# --- an action the role lacks does nothing --------------------------------------------------


@pytest.fixture
def targets(ledger, open_account):
    """A row for every action to act on, so that running it would visibly change something."""
    frozen = open_account("Frozen")
    account_freeze(account_uuid=frozen.uuid, reason="set up frozen")
    asset_deactivate(code="GBP", reason="set up inactive")
    schedule = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="t", task="apps.core.tasks.noop", interval=schedule, enabled=True
    )
    CrontabSchedule.objects.create(minute="5")
    AccessAttempt.objects.create(
        username="x@example.com", ip_address="10.0.0.1", user_agent="t", failures_since_start=1,
        attempt_time=timezone.now() - dt.timedelta(days=30),
    )  # fmt: skip
    TOTPDevice.objects.create(user=ledger.maker, name="phone", confirmed=True)
    token_create(user=ledger.maker, name="t")
    rate = ExchangeRate.objects.filter(is_active=True).order_by("id").first()
    return {
        ("accounts.Account", "freeze"): [ledger.funded.uuid],
        ("accounts.Account", "unfreeze"): [frozen.uuid],
        ("accounts.Account", "deposit"): [ledger.funded.uuid],
        ("accounts.Account", "withdraw"): [ledger.funded.uuid],
        ("accounts.Account", "close"): [ledger.empty.uuid],
        ("payments.Transfer", "reverse"): [ledger.transfer.uuid],
        ("payments.MovementRequest", "approve"): [ledger.request.uuid],
        ("payments.MovementRequest", "reject"): [ledger.request.uuid],
        ("assets.Asset", "activate_assets"): ["GBP"],
        ("assets.Asset", "deactivate_assets"): ["EUR"],
        ("assets.ExchangeRate", "deactivate_rates"): [rate.id],
        ("django_celery_beat.PeriodicTask", "run_tasks"): [task.pk],
    }


def _fingerprint() -> dict[str, list]:
    """Every row of every table the console shows, and of every event table."""
    tables = {*admin.site._registry, *event_models()}
    return {label(m): list(m.objects.order_by("pk").values_list()) for m in tables}


def _action_url(model, name: str) -> str:
    """The URL of one of unfold's button actions."""
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}")


def _attempt(client, model, name: str, kind: str, selected) -> Any:
    fields = FORM_FIELDS.get(name, {})
    if kind != BULK:
        return client.post(_action_url(model, name), fields)
    data = {"action": name, "_selected_action": [str(pk) for pk in selected], "apply": "1"}
    return client.post(changelist_url(model), {**data, **fields})


@pytest.mark.parametrize("role", EVERY_ROLE)  # superusers too: they may not delete the ledger
def test_posting_an_action_the_role_lacks_runs_nothing(role_users, targets, role):
    client = signed_in(role_users[role])
    models_by_label = {label(m): m for m in admin.site._registry}
    kinds = site_actions()
    before = _fingerprint()
    attempted = []
    for (lbl, name), roles in sorted(EXPECTED.items()):
        if role in roles:
            continue
        model = models_by_label[lbl]
        selected = targets.get((lbl, name)) or list(
            model.objects.order_by("pk").values_list("pk", flat=True)[:2]
        )
        response = _attempt(client, model, name, kinds[(lbl, name)], selected)
        assert response.status_code in (200, 302, 403), (lbl, name, response.status_code)
        templates = [t.name for t in getattr(response, "templates", [])]
        assert "admin/action_form.html" not in templates, (lbl, name)
        assert "admin/delete_selected_confirmation.html" not in templates, (lbl, name)
        assert _fingerprint() == before, (role, lbl, name)
        attempted.append((lbl, name))
    assert attempted, "every role lacks something, the superuser the ledger's deletion"


# --- event tables: read-only for everyone -----------------------------------------------------

EVENT_MODELS = [m for m in event_models() if m.__module__.startswith("apps.")]


def test_every_event_table_is_in_the_console():
    assert [label(m) for m in EVENT_MODELS if m not in admin.site._registry] == []


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_event_tables_cannot_be_added_changed_or_deleted_by_anyone(role_users, ledger, role):
    user = role_users[role]
    client = signed_in(user)
    request = _request_as(user)
    tried_on_rows = set()
    for model in EVENT_MODELS:
        model_admin = admin.site._registry[model]
        event = model.objects.order_by("id").first()
        assert not model_admin.has_add_permission(request), label(model)
        assert not model_admin.has_change_permission(request, event), label(model)
        assert not model_admin.has_delete_permission(request, event), label(model)
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        add = reverse(f"{prefix}_add")
        edited = {"event_type": "forged", "event_data": "{}", "meta_data": "{}", "hash": "0"}
        before = list(model.objects.order_by("id").values_list())
        assert client.get(add).status_code == 403, label(model)
        assert client.post(add, edited).status_code == 403, label(model)
        if event is not None:
            change = reverse(f"{prefix}_change", args=[event.pk])
            delete = reverse(f"{prefix}_delete", args=[event.pk])
            assert client.post(change, edited).status_code == 403, label(model)
            assert client.get(delete).status_code == 403, label(model)
            assert client.post(delete, {"post": "yes"}).status_code == 403, label(model)
            client.post(
                changelist_url(model),
                {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
            )
            detail = client.get(change)
            if model_admin.has_view_permission(request, event):
                assert detail.status_code == 200, label(model)
                assert 'name="_save"' not in detail.content.decode(), label(model)
            else:
                assert detail.status_code == 403, label(model)
            tried_on_rows.add(label(model))
        assert list(model.objects.order_by("id").values_list()) == before, label(model)
    assert {"accounts.AccountEvent", "payments.PaymentEvent", "assets.AssetEvent"} <= tried_on_rows
