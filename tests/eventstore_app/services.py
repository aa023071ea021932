import uuid

from apps.core import store
from tests.eventstore_app.aggregates import Tally


@store.command
def tally_open(*, name: str, tally_uuid: uuid.UUID | None = None) -> Tally:
    tally = Tally(tally_uuid or uuid.uuid4())
    tally.open(name)
    store.save(tally)
    return tally


@store.command
def tally_increment(*, tally_uuid: uuid.UUID, amount: int, note: str = "") -> Tally:
    tally = store.load_one(Tally, tally_uuid)
    tally.increment(amount, note)
    store.save(tally)
    return tally


@store.command
def tally_move(*, source: uuid.UUID, target: uuid.UUID, amount: int) -> None:
    """Touches two aggregates in one command, locked in uuid order whatever the argument order."""
    first, second = store.load(Tally, source, target)
    first.increment(-amount)
    second.increment(amount)
    store.save(first, second)
