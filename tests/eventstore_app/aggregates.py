from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import DomainError
from tests.eventstore_app.events import TallyIncremented, TallyOpened


class TallyLimitReached(DomainError):
    code = "TALLY_LIMIT_REACHED"


class Tally(AggregateRoot):
    aggregate_type = "eventstore_app.Tally"
    limit = 1_000_000

    def __init__(self, aggregate_uuid):
        super().__init__(aggregate_uuid)
        self.name = ""
        self.total = 0
        self.increments = 0

    def open(self, name: str) -> None:
        self.record(TallyOpened(name=name))

    def increment(self, amount: int, note: str = "") -> None:
        if self.total + amount > self.limit:
            raise TallyLimitReached(details={"total": self.total, "amount": amount})
        self.record(TallyIncremented(amount=amount, note=note))

    @applies(TallyOpened)
    def _opened(self, evt: TallyOpened) -> None:
        self.name = evt.name

    @applies(TallyIncremented)
    def _incremented(self, evt: TallyIncremented) -> None:
        self.total += evt.amount
        self.increments += 1
