"""Who holds which object permissions on an account (the query behind every account request)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from apps.accounts.selectors import account_object_permissions
from tests.factories import UserFactory

OWNER = {"view_account", "transact_account", "close_account"}


def test_an_owner_holds_the_owner_permissions_on_his_accounts_only(customer, open_account):
    mine, other = open_account("mine"), open_account("other", owner=UserFactory())
    held = account_object_permissions(customer, [mine.uuid, other.uuid])
    assert held == {mine.uuid: OWNER, other.uuid: set()}


def test_permissions_granted_to_a_group_count_for_its_members(customer, open_account):
    account = open_account("shared", owner=UserFactory())
    auditors = Group.objects.create(name="auditors of one account")
    assign_perm("accounts.view_account", auditors, account)
    customer.groups.add(auditors)
    assert account_object_permissions(customer, [account.uuid]) == {account.uuid: {"view_account"}}


def test_an_inactive_owner_holds_nothing(customer, open_account):
    account = open_account()
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    assert account_object_permissions(customer, [account.uuid]) == {account.uuid: set()}
