from apps.core.events import DomainEvent, event, upcaster


@event("eventstore_app.TallyOpened")
class TallyOpened(DomainEvent):
    name: str


@event("eventstore_app.TallyIncremented", version=2)
class TallyIncremented(DomainEvent):
    amount: int
    note: str


@upcaster("eventstore_app.TallyIncremented", from_version=1)
def _tally_incremented_v1_to_v2(data):
    # Version 1 called the amount "by" and had no note.
    return {"amount": data["by"], "note": ""}
