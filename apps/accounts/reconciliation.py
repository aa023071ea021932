"""The ledger's proof of itself. `manage.py reconcile` prints it; tests and jobs call it.

Each check reads the event tables, the source of truth, set-wise and in batches:

- conservation: per asset, every account's balance sums to zero;
- balances: every posting's balance_after, and every balance read model, equal a replay of the
  postings;
- balanced entries: the postings of every journal entry (grouped by entry_uuid) sum to zero per
  asset, whoever wrote them;
- described entries: every entry an app describes (a transfer, a reversal, a basket operation)
  has exactly the postings its descriptor implies, and every posting belongs to a described
  entry. Each kind of descriptor is an `EntrySource`, registered by its app's
  `reconciliation.py` (see `entry_source_register`);
- chains and heads: every hash chain verifies and every stream head is the last event of its
  chain (apps.core.verification), and no head stands for no chain;
- snapshots: every snapshot equals the replay of the events it covers;
- read models: every read model equals a replay of its events;
- custodians (on request): each custodian holds what its settlement account says.
"""

from __future__ import annotations

import heapq
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, When
from django.db.models.expressions import Expression
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Collate
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from apps.accounts.events import MoneyAdded
from apps.accounts.models import AccountBalance, AccountEvent, ReconciliationRun
from apps.accounts.selectors import MONEY_EVENT_TYPES
from apps.core import sql
from apps.core.aggregates import AggregateRoot, aggregate_classes
from apps.core.context import current_actor
from apps.core.events import decode
from apps.core.models import AggregateStream, Snapshot, event_model_for, event_models
from apps.core.projection import projectors_for
from apps.core.replay import rebuild_projections
from apps.core.verification import broken_links
from apps.custodians.services import custodian_reconcile

BATCH_SIZE = 5000


@dataclass
class Discrepancy:
    check: str
    subject: str
    expected: Any
    found: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class ReconciliationReport:
    totals_by_asset: dict[str, int] = field(default_factory=dict)
    accounts_checked: int = 0
    events_checked: int = 0
    entries_checked: int = 0
    snapshots_checked: int = 0
    custodians: list[dict[str, Any]] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    def add(self, check: str, subject: str, expected: Any, found: Any) -> None:
        self.discrepancies.append(Discrepancy(check, subject, expected, found))

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "totals_by_asset": self.totals_by_asset,
            "accounts_checked": self.accounts_checked,
            "events_checked": self.events_checked,
            "entries_checked": self.entries_checked,
            "snapshots_checked": self.snapshots_checked,
            "custodians": self.custodians,
            "discrepancies": [d.as_dict() for d in self.discrepancies],
        }


# --- the registry of entry descriptors ----------------------------------------------------------


class ExpectedLeg(NamedTuple):
    """A posting an entry must have: a positive amount credits the account, a negative debits."""

    account: uuid.UUID
    asset_code: str
    amount: int


@dataclass(frozen=True)
class EntrySource:
    """One kind of journal-entry descriptor.

    `entries(batch_size)` yields (entry uuid as text, descriptor) in ascending order of the text
    (`str(uuid)` orders like the uuid; order a text column with `in_text_order`), streaming
    from its event table; `legs(descriptor)` gives the postings that entry must have.
    """

    name: str
    entries: Callable[[int], Iterable[tuple[str, Any]]]
    legs: Callable[[Any], Iterable[ExpectedLeg]]


_entry_sources: dict[str, EntrySource] = {}


def entry_source_register(
    *,
    name: str,
    entries: Callable[[int], Iterable[tuple[str, Any]]],
    legs: Callable[[Any], Iterable[ExpectedLeg]],
) -> None:
    """Declare a kind of entry to `reconcile`. Called at import of an app's `reconciliation.py`,
    which `reconcile` imports for every installed app; registering a name again replaces it."""
    _entry_sources[name] = EntrySource(name, entries, legs)


def entry_sources() -> list[EntrySource]:
    autodiscover_modules("reconciliation")
    return [_entry_sources[name] for name in sorted(_entry_sources)]


def in_text_order(expression: Expression | str) -> Collate:
    """Order a text expression by its bytes on both backends, as Python orders `str`: a
    database collation (en_US) would order hyphens and digits its own way."""
    collation = "C" if connection.vendor == "postgresql" else "BINARY"
    return Collate(F(expression) if isinstance(expression, str) else expression, collation)


# --- conservation and balances ------------------------------------------------------------------


def _check_conservation(report: ReconciliationReport) -> None:
    """Per asset, every account's balance sums to zero: money was only ever moved."""
    totals = AccountBalance.objects.values("asset_code").annotate(total=Sum("balance"))
    for row in totals.order_by("asset_code"):
        report.totals_by_asset[row["asset_code"]] = row["total"]
        if row["total"] != 0:
            report.add("conservation", row["asset_code"], 0, row["total"])


def _replayed_balances(report: ReconciliationReport, batch_size: int) -> dict[tuple[str, str], int]:
    """Balances recomputed from the postings, each posting's balance_after checked on the way."""
    balances: dict[tuple[str, str], int] = defaultdict(int)
    rows = (
        AccountEvent.objects.filter(event_type__in=MONEY_EVENT_TYPES)
        .order_by("aggregate_uuid", "aggregate_version")
        .values_list("aggregate_uuid", "event_type", "event_data")
        .iterator(chunk_size=batch_size)
    )
    for account_uuid, event_type, data in rows:
        sign = 1 if event_type == MoneyAdded.event_type else -1
        key = (str(account_uuid), data["asset_code"])
        balances[key] += sign * data["amount"]
        if balances[key] != data["balance_after"]:
            report.add("balance_after", f"{key[0]} {key[1]}", balances[key], data["balance_after"])
        report.events_checked += 1
    return balances


def _check_balances(report: ReconciliationReport, batch_size: int) -> None:
    replayed = _replayed_balances(report, batch_size)
    stored = {
        (str(account), asset): balance
        for account, asset, balance in AccountBalance.objects.values_list(
            "account_id", "asset_code", "balance"
        )
    }
    report.accounts_checked = len({account for account, _ in stored})
    for key in sorted(set(replayed) | set(stored)):
        if replayed.get(key, 0) != stored.get(key, 0):
            report.add("balance", f"{key[0]} {key[1]}", replayed.get(key, 0), stored.get(key))


# --- journal entries ----------------------------------------------------------------------------


def _postings():
    """Every posting with its entry (text, in byte order) and asset, from the account events.
    Grouping and ordering both name the selected `entry`, so PostgreSQL sees one expression
    even with parameters bound on the server (each mention of the JSON key is a parameter)."""
    return AccountEvent.objects.filter(event_type__in=MONEY_EVENT_TYPES).annotate(
        entry=in_text_order(KT("event_data__entry_uuid")), asset=KT("event_data__asset_code")
    )


def _signed_amount() -> Case:
    amount = Cast(KT("event_data__amount"), BigIntegerField())
    return Case(
        When(event_type=MoneyAdded.event_type, then=amount),
        default=-amount,
        output_field=BigIntegerField(),
    )


def _check_entries_balance(report: ReconciliationReport) -> None:
    """Per entry and asset the postings sum to zero. The database groups them; only the
    groups that do not balance come back."""
    unbalanced = (
        _postings()
        .values("entry", "asset")
        .annotate(total=Sum(_signed_amount()))
        .exclude(total=0)
        .order_by("entry", "asset")
    )
    for row in unbalanced.iterator():
        report.add("entry_balanced", f"{row['entry']} {row['asset']}", 0, row["total"])


Legs = dict[tuple[uuid.UUID, str], tuple[int, int]]  # (account, asset) -> (net amount, postings)


def _posting_groups(batch_size: int) -> Iterator[tuple[str | None, Legs]]:
    """Each entry's postings, net per account and asset with their count, in entry text order;
    streamed, one grouped query for the whole ledger."""
    rows = (
        _postings()
        .values("entry", "aggregate_uuid", "asset")
        .annotate(total=Sum(_signed_amount()), postings=Count("id"))
        .order_by("entry", "aggregate_uuid", "asset")
        .iterator(chunk_size=batch_size)
    )
    for entry, group in itertools.groupby(rows, key=itemgetter("entry")):
        yield entry, {(r["aggregate_uuid"], r["asset"]): (r["total"], r["postings"]) for r in group}


def _expected(legs: Iterable[ExpectedLeg]) -> Legs:
    grouped: dict[tuple[uuid.UUID, str], list[int]] = defaultdict(lambda: [0, 0])
    for leg in legs:
        if leg.amount:  # a leg of nothing posts nothing
            account = leg.account if isinstance(leg.account, uuid.UUID) else uuid.UUID(leg.account)
            share = grouped[(account, leg.asset_code)]
            share[0] += leg.amount
            share[1] += 1
    return {key: (net, count) for key, (net, count) in grouped.items()}


def _legs_text(legs: Legs) -> dict[str, Any]:
    return {
        f"{account} {asset}": net if count == 1 else f"{net} in {count} postings"
        for (account, asset), (net, count) in sorted(legs.items(), key=lambda i: str(i[0]))
    }


def _tagged(source: EntrySource, batch_size: int) -> Iterator[tuple[str, EntrySource, Any]]:
    for entry, descriptor in source.entries(batch_size):
        yield entry, source, descriptor


def _described_entries(batch_size: int) -> Iterator[tuple[str, EntrySource, Any]]:
    """Every registered source's entries, merged into one stream in entry text order."""
    streams = [_tagged(source, batch_size) for source in entry_sources()]
    return heapq.merge(*streams, key=itemgetter(0))


class _InOrder:
    """An iterator of keyed items that refuses to go backwards: a merge join over streams in
    different orders would report everything as missing."""

    def __init__(self, items: Iterator, name: str):
        self._items, self._name, self._last = items, name, None
        self.current = self._next()

    def _next(self):
        item = next(self._items, None)
        if item is not None and item[0] is not None:
            if self._last is not None and item[0] < self._last:
                raise RuntimeError(f"{self._name} are not in entry order at {item[0]}")
            self._last = item[0]
        return item

    def advance(self):
        self.current = self._next()


def _check_entries_described(report: ReconciliationReport, batch_size: int) -> None:
    """Merge-join the postings grouped by entry with the registered descriptors, both in entry
    text order: each side streams, so memory stays flat however long the ledger."""
    postings = _InOrder(_posting_groups(batch_size), "postings")
    described = _InOrder(_described_entries(batch_size), "entries")
    previous = None
    while postings.current is not None or described.current is not None:
        group, entry = postings.current, described.current
        if group is not None and group[0] is None:  # postings that name no entry at all
            report.add(
                "posting_entry", "postings without entry_uuid", "an entry", _legs_text(group[1])
            )
            postings.advance()
        elif entry is not None and entry[0] == previous:  # two descriptors of one entry
            report.add("entry_described", f"{entry[1].name} {entry[0]}", "one descriptor", "two")
            described.advance()
        elif entry is None or (group is not None and group[0] < entry[0]):  # nobody's entry
            report.add("posting_entry", group[0], "a described entry", _legs_text(group[1]))
            postings.advance()
        else:
            matched = group is not None and group[0] == entry[0]
            _match_entry(report, entry[1], entry[0], entry[2], group[1] if matched else None)
            previous = entry[0]
            described.advance()
            if matched:
                postings.advance()


def _match_entry(
    report: ReconciliationReport, source: EntrySource, entry: str, descriptor: Any, found
) -> None:
    """An entry's postings (`found`, None when it has none) against its descriptor's legs."""
    report.entries_checked += 1
    subject = f"{source.name} {entry}"
    if found is None:
        report.add("entry_postings", subject, "postings", "none")
        return
    expected = _expected(source.legs(descriptor))
    if expected != found:
        report.add("entry_postings", subject, _legs_text(expected), _legs_text(found))


# --- event store: chains, heads, snapshots ------------------------------------------------------


def _check_chains(report: ReconciliationReport) -> None:
    for link in broken_links():
        report.add("hash_chain", str(link), "intact", link.reason)


def _check_heads(report: ReconciliationReport) -> None:
    """What the chain walk cannot see: heads of no aggregate type with an event table, and
    heads at version 0 (a head with no events, whose empty chain would match it)."""
    tables = {model._meta.app_label for model in event_models()}
    known = [name for name in aggregate_classes() if name.split(".", 1)[0] in tables]
    strays = AggregateStream.objects.filter(~Q(aggregate_type__in=known) | Q(version=0))
    for stream_uuid, aggregate_type, version in strays.values_list(
        "uuid", "aggregate_type", "version"
    ).iterator():
        if version == 0:
            report.add("stream_head", f"{aggregate_type} {stream_uuid}", "events", "none")
        else:
            report.add("stream_head", f"{aggregate_type} {stream_uuid}", "a known type", "none")


def _canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


class _SnapshotTarget(NamedTuple):
    table: str
    aggregate_uuid: uuid.UUID
    version: int
    state: Any


def _event_queries(
    ranges: list[tuple[uuid.UUID, int, int]], budget: int
) -> Iterator[dict[uuid.UUID, tuple[int, int]]]:
    """The version ranges to read, packed into queries of at most `budget` events; a range
    longer than that is read in pieces, in order."""
    query: dict[uuid.UUID, tuple[int, int]] = {}
    size = 0
    for aggregate_uuid, low, high in ranges:
        while low <= high:
            top = min(high, low + budget - 1)
            if query and (size + top - low + 1 > budget or aggregate_uuid in query):
                yield query
                query, size = {}, 0
            query[aggregate_uuid] = (low, top)
            size += top - low + 1
            low = top + 1
    if query:
        yield query


_REPLAY_COLUMNS = (
    "aggregate_uuid",
    "aggregate_version",
    "event_type",
    "event_version",
    "event_data",
)


class _SnapshotReplay:
    """Replays each snapshotted aggregate from its first event, comparing the state at every
    snapshot's version; an aggregate whose snapshots span two pages carries over."""

    def __init__(self, report: ReconciliationReport, batch_size: int):
        self.report, self.batch_size = report, batch_size
        self.carried: AggregateRoot | None = None

    def check_page(self, rows: list[tuple]) -> None:
        by_app: dict[str, dict[uuid.UUID, AggregateRoot]] = defaultdict(dict)
        pending: dict[uuid.UUID, list[_SnapshotTarget]] = defaultdict(list)
        for aggregate_uuid, aggregate_type, version, state in rows:
            aggregate = self._aggregate(aggregate_uuid, aggregate_type, version, by_app)
            if aggregate is not None:
                table = event_model_for(aggregate.app_label)._meta.db_table
                pending[aggregate_uuid].append(
                    _SnapshotTarget(table, aggregate_uuid, version, state)
                )
            self.report.snapshots_checked += 1
        for app_label, aggregates in by_app.items():
            self._replay(app_label, aggregates, pending)
        for targets in pending.values():
            for target in targets:  # the chain ends before the snapshot
                self._found(target, "no event at this version")
        last_uuid = rows[-1][0]
        self.carried = next((a[last_uuid] for a in by_app.values() if last_uuid in a), None)

    def _aggregate(self, aggregate_uuid, aggregate_type, version, by_app) -> AggregateRoot | None:
        for aggregates in by_app.values():
            if aggregate_uuid in aggregates:
                return aggregates[aggregate_uuid]
        if self.carried is not None and self.carried.uuid == aggregate_uuid:
            aggregate = self.carried
        else:
            try:
                aggregate = aggregate_classes()[aggregate_type](aggregate_uuid)
                event_model_for(aggregate.app_label)
            except (KeyError, LookupError):
                self.report.add(
                    "snapshot",
                    f"{aggregate_type} {aggregate_uuid} v{version}",
                    "a known type",
                    "none",
                )
                return None
        by_app[aggregate.app_label][aggregate_uuid] = aggregate
        return aggregate

    def _replay(self, app_label: str, aggregates: dict, pending: dict) -> None:
        model = event_model_for(app_label)
        ranges = [
            (u, a.version + 1, pending[u][-1].version)
            for u, a in sorted(aggregates.items())
            if pending[u] and pending[u][-1].version > a.version
        ]
        for query in _event_queries(ranges, self.batch_size):
            for aggregate_uuid, version, *event in sql.select_ranges(
                model, _REPLAY_COLUMNS, "aggregate_uuid", "aggregate_version", query
            ):
                aggregate = aggregates[aggregate_uuid]
                if version != aggregate.version + 1:
                    continue  # a gap in the chain: the chain check names it
                aggregate.apply(decode(*event))
                self._compare(aggregate, pending[aggregate_uuid])

    def _compare(self, aggregate: AggregateRoot, targets: list[_SnapshotTarget]) -> None:
        while targets and targets[0].version == aggregate.version:
            target = targets.pop(0)
            replayed = _canonical(json.loads(json.dumps(aggregate.snapshot_state())))
            if _canonical(target.state) != replayed:
                self._found(target, "differs from the replay of its events")

    def _found(self, target: _SnapshotTarget, what: str) -> None:
        subject = f"{target.table}: aggregate {target.aggregate_uuid} version {target.version}"
        self.report.add("snapshot", subject, "equal to the replay of its events", what)


def _check_snapshots(report: ReconciliationReport, batch_size: int) -> None:
    """Every snapshot against a replay without it. Pages are keyset over (aggregate, version),
    the snapshots' unique index, so each aggregate's chain is replayed once, in order, for all
    its snapshots."""
    replay = _SnapshotReplay(report, batch_size)
    columns = ("aggregate_uuid", "aggregate_type", "aggregate_version", "state")
    snapshots = Snapshot.objects.order_by("aggregate_uuid", "aggregate_version")
    page = list(snapshots.values_list(*columns)[:batch_size])
    while page:
        replay.check_page(page)
        last_uuid, _, last_version, _ = page[-1]
        after = Q(aggregate_uuid__gt=last_uuid) | Q(
            aggregate_uuid=last_uuid, aggregate_version__gt=last_version
        )
        page = list(snapshots.filter(after).values_list(*columns)[:batch_size])


# --- read models and custodians -----------------------------------------------------------------


def _table_rows(model) -> list[tuple]:
    """The table's content, without surrogate ids (a rebuild numbers its rows anew)."""
    fields = [
        f.attname
        for f in model._meta.concrete_fields
        if not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))
    ]
    return sorted(model.objects.values_list(*fields), key=lambda row: tuple(map(str, row)))


def _check_replay(report: ReconciliationReport) -> None:
    """Rebuild every read model inside a transaction that is rolled back, and compare."""
    for model in event_models():
        app_label = model._meta.app_label
        read_models = [m for p in projectors_for(app_label) for m in p.read_models]
        live = {m: _table_rows(m) for m in read_models}
        with transaction.atomic():
            rebuild_projections(app_label)
            for read_model, rows in live.items():
                if _table_rows(read_model) != rows:
                    report.add("replay", read_model._meta.label, "equal to replay", "differs")
            transaction.set_rollback(True)


def _check_custodians(report: ReconciliationReport) -> None:
    """Each custodian's reported holdings against its settlement account (recorded by the
    custodians app like `reconcile_custodians`). An unreachable custodian proves nothing either
    way, and says so under a check of its own."""
    for check in custodian_reconcile():
        if not check.ok:
            report.custodians.append({"custodian": check.custodian, "reachable": False})
            message = (check.error or {}).get("message", "no answer")
            report.add("custodian_unreachable", check.custodian, "reachable", message)
            continue
        reconciliation = check.reconciliation
        report.custodians.append(
            {"custodian": check.custodian, "reachable": True, "clean": reconciliation.clean}
        )
        for row in reconciliation.results:
            if row["difference"]:
                subject = f"{check.custodian} {row['asset_code']}"
                report.add("custodian", subject, row["expected"], row["custodian_balance"])


def ledger_reconcile(
    *, replay: bool = True, custodians: bool = False, batch_size: int = BATCH_SIZE
) -> ReconciliationReport:
    """Run every check; on PostgreSQL in one repeatable-read snapshot so totals are consistent.

    The custodians are asked after that transaction: a slow bank must not hold it open.
    """
    report = ReconciliationReport()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _check_conservation(report)
        _check_balances(report, batch_size)
        _check_entries_balance(report)
        _check_entries_described(report, batch_size)
        _check_chains(report)
        _check_heads(report)
        _check_snapshots(report, batch_size)
        if replay:
            _check_replay(report)
    if custodians:
        _check_custodians(report)
    return report


def ledger_reconcile_recorded(
    *, replay: bool = True, custodians: bool = False
) -> tuple[ReconciliationReport, ReconciliationRun]:
    """Reconcile and keep the outcome, so the console shows the last run and its findings."""
    started_at = timezone.now()
    report = ledger_reconcile(replay=replay, custodians=custodians)
    run = ReconciliationRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        clean=report.clean,
        accounts_checked=report.accounts_checked,
        events_checked=report.events_checked,
        totals_by_asset=report.totals_by_asset,
        discrepancies=[d.as_dict() for d in report.discrepancies],
        actor=current_actor(),
    )
    return report, run
