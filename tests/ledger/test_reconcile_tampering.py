"""`reconcile` against an intruder with database access: a ledger built through the services,
then changed behind their back (append-only triggers dropped where events are touched). Each
attack leaves every other check silent, so the finding named is the only thing that stands
between it and a clean report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from apps.accounts.models import AccountEvent
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import MONEY_EVENT_TYPES
from apps.baskets.services import basket_compose
from apps.core.migration_operations import append_only_sql, drop_append_only_sql
from apps.core.models import AggregateStream, Snapshot
from apps.core.replay import rebuild_projections
from apps.payments.models import PaymentEvent
from apps.payments.models import Transfer as TransferView
from apps.payments.services import conversion_create, transfer_create, transfer_reverse
from tests.baskets import conftest as baskets

pytestmark = pytest.mark.django_db

components_for = baskets.components_for  # {asset: minor units} of n GCU at current weights


@contextmanager
def triggers_off(model) -> Iterator[None]:
    """The table's append-only triggers dropped for the block and put back after, as an
    intruder would; DDL is transactional on both backends, so the test's rollback undoes it."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        for statement in drop_append_only_sql(connection.vendor, table):
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in append_only_sql(connection.vendor, table):
            cursor.execute(statement)


def rewind_head(aggregate_uuid: uuid.UUID, model) -> None:
    """Point the stream head at what is now the last event of the aggregate's chain."""
    last = model.objects.filter(aggregate_uuid=aggregate_uuid).latest("aggregate_version")
    AggregateStream.objects.filter(uuid=aggregate_uuid).update(
        version=last.aggregate_version, last_hash=last.hash
    )


def postings_of(entry_uuid: uuid.UUID):
    return AccountEvent.objects.filter(
        event_type__in=MONEY_EVENT_TYPES, event_data__entry_uuid=str(entry_uuid)
    )


def delete_postings(entry_uuid: uuid.UUID) -> None:
    """Delete every posting of an entry (the last events of their accounts), rewind the heads
    and rebuild the read models, so that chains, heads, balances and totals all agree."""
    postings = postings_of(entry_uuid)
    accounts = set(postings.values_list("aggregate_uuid", flat=True))
    assert accounts, "the entry has postings to delete"
    with triggers_off(AccountEvent):
        postings.delete()
    for account in accounts:
        rewind_head(account, AccountEvent)
    rebuild_projections("accounts")


def findings(report) -> list[tuple[str, str]]:
    return sorted((d.check, d.subject) for d in report.discrepancies)


# --- entries against their postings -------------------------------------------------------------


def _transfer(a, b) -> tuple[str, uuid.UUID]:
    t = transfer_create(from_account=a.uuid, to_account=b.uuid, amount=2_500, asset_code="USD")
    return "payments.transfer", t.uuid


def _cross_asset_transfer(a, b) -> tuple[str, uuid.UUID]:
    t = transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=2_500, asset_code="USD", to_asset_code="EUR"
    )
    return "payments.transfer", t.uuid


def _conversion(a, b) -> tuple[str, uuid.UUID]:
    t = conversion_create(account_uuid=a.uuid, from_asset="USD", to_asset="EUR", amount=2_500)
    return "payments.transfer", t.uuid


def _reversal(a, b) -> tuple[str, uuid.UUID]:
    _, transfer_uuid = _transfer(a, b)
    transfer_reverse(transfer_uuid=transfer_uuid, reason="sent to the wrong account")
    return "payments.reversal", TransferView.objects.get(uuid=transfer_uuid).reversal_uuid


def _basket_operation(a, b) -> tuple[str, uuid.UUID]:
    operation = basket_compose(account_uuid=b.uuid, basket_code="GCU", amount=10_000)
    return "baskets.operation", operation.uuid


@pytest.mark.parametrize(
    "book", [_transfer, _cross_asset_transfer, _conversion, _reversal, _basket_operation]
)
def test_an_entry_whose_postings_were_deleted_and_heads_rewound_is_found(
    open_account, components_for, book
):
    a = open_account("A", funded={"USD": 10_000})
    holdings = components_for(10_000)  # what B composes in the basket case
    b = open_account("B", funded={**holdings, "EUR": holdings.get("EUR", 0) + 500})
    source, entry_uuid = book(a, b)
    assert ledger_reconcile().clean
    delete_postings(entry_uuid)
    report = ledger_reconcile()
    assert findings(report) == [("entry_postings", f"{source} {entry_uuid}")]
    (finding,) = report.discrepancies
    assert finding.found == "none"


def test_postings_whose_entry_was_deleted_are_found(open_account):
    a, b = open_account("A", funded={"USD": 10_000}), open_account("B")
    _, transfer_uuid = _transfer(a, b)
    with triggers_off(PaymentEvent):
        PaymentEvent.objects.filter(aggregate_uuid=transfer_uuid).delete()
    AggregateStream.objects.filter(uuid=transfer_uuid).delete()
    rebuild_projections("payments")
    report = ledger_reconcile()
    assert findings(report) == [("posting_entry", str(transfer_uuid))]
    (finding,) = report.discrepancies
    assert finding.found == {f"{a.uuid} USD": -2_500, f"{b.uuid} USD": 2_500}


def test_an_unbalanced_entry_is_found(open_account):
    """One leg edited (amount and balance_after, read models rebuilt to agree): the entry no
    longer sums to zero, and no longer matches its transfer."""
    a, b = open_account("A", funded={"USD": 10_000}), open_account("B")
    _, transfer_uuid = _transfer(a, b)
    credit = postings_of(transfer_uuid).get(event_type="accounts.MoneyAdded")
    data = {**credit.event_data, "amount": 250, "balance_after": 250}
    with triggers_off(AccountEvent):
        AccountEvent.objects.filter(pk=credit.pk).update(event_data=data)
    rebuild_projections("accounts")
    report = ledger_reconcile()
    checks = {d.check: d for d in report.discrepancies}
    assert checks["entry_balanced"].subject == f"{transfer_uuid} USD"
    assert checks["entry_balanced"].found == -2_250
    assert checks["entry_postings"].subject == f"payments.transfer {transfer_uuid}"
    assert checks["entry_postings"].found[f"{b.uuid} USD"] == 250
    assert checks["conservation"].found == -2_250


def test_a_balanced_entry_that_is_not_what_its_transfer_says_is_found(open_account):
    """Both legs moved to another account: the entry still balances, the money went elsewhere."""
    a, b, c = open_account("A", funded={"USD": 10_000}), open_account("B"), open_account("C")
    _, transfer_uuid = _transfer(a, b)
    credit = postings_of(transfer_uuid).get(event_type="accounts.MoneyAdded")
    with triggers_off(AccountEvent):
        AccountEvent.objects.filter(pk=credit.pk).update(aggregate_uuid=c.uuid)
    report = ledger_reconcile(replay=False)
    assert ("entry_postings", f"payments.transfer {transfer_uuid}") in findings(report)
    assert not any(d.check == "entry_balanced" for d in report.discrepancies)


# --- stream heads -------------------------------------------------------------------------------


def test_a_head_whose_hash_differs_from_its_chain_is_found(open_account):
    a = open_account(funded={"USD": 100})
    AggregateStream.objects.filter(uuid=a.uuid).update(last_hash="0" * 128)
    report = ledger_reconcile()
    (finding,) = report.discrepancies
    assert finding.check == "hash_chain" and str(a.uuid) in finding.subject
    assert finding.found == "stream head disagrees with the chain"


def test_a_head_rewound_below_its_chain_is_found(open_account):
    a = open_account(funded={"USD": 100})
    previous = AccountEvent.objects.get(aggregate_uuid=a.uuid, aggregate_version=1)
    AggregateStream.objects.filter(uuid=a.uuid).update(version=1, last_hash=previous.hash)
    (finding,) = ledger_reconcile().discrepancies
    assert (finding.check, finding.found) == ("hash_chain", "stream head disagrees with the chain")


def test_events_without_a_head_are_found(open_account):
    a = open_account(funded={"USD": 100})
    AggregateStream.objects.filter(uuid=a.uuid).delete()
    (finding,) = ledger_reconcile().discrepancies
    assert (finding.check, finding.found) == ("hash_chain", "events without a stream head")


@pytest.mark.parametrize(
    ("aggregate_type", "version"), [("accounts.Account", 0), ("ghost.Thing", 3)]
)
def test_a_head_that_stands_for_no_chain_is_found(bank, aggregate_type, version):
    stray = uuid.uuid4()
    AggregateStream.objects.create(
        uuid=stray, aggregate_type=aggregate_type, version=version, last_hash=""
    )
    report = ledger_reconcile()
    assert findings(report) == [("stream_head", f"{aggregate_type} {stray}")]


# --- snapshots ----------------------------------------------------------------------------------


def test_a_snapshot_edited_to_a_bigger_balance_is_found(open_account, settings):
    settings.EVENT_STORE_SNAPSHOT_EVERY = 3
    a = open_account(funded={"USD": 100_000_00})  # created, deposited, then two transfers
    for _ in range(2):
        transfer_create(
            from_account=a.uuid, to_account=open_account().uuid, amount=1, asset_code="USD"
        )
    snapshot = Snapshot.objects.get(aggregate_uuid=a.uuid, aggregate_version=3)
    assert ledger_reconcile().clean
    state = snapshot.state
    state["balances"]["USD"] = 1_000_090_00
    Snapshot.objects.filter(pk=snapshot.pk).update(state=state)
    report = ledger_reconcile()
    table = AccountEvent._meta.db_table
    assert findings(report) == [("snapshot", f"{table}: aggregate {a.uuid} version 3")]


def test_a_snapshot_beyond_the_end_of_its_chain_is_found(open_account, settings):
    settings.EVENT_STORE_SNAPSHOT_EVERY = 2
    a = open_account(funded={"USD": 100})
    snapshot = Snapshot.objects.get(aggregate_uuid=a.uuid)
    Snapshot.objects.filter(pk=snapshot.pk).update(aggregate_version=9)
    report = ledger_reconcile()
    assert [(d.check, d.found) for d in report.discrepancies] == [
        ("snapshot", "no event at this version")
    ]
