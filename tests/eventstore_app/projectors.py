from django.db.models import F

from apps.core.projection import Projector
from tests.eventstore_app.events import TallyIncremented, TallyOpened
from tests.eventstore_app.models import TallyView

tally_projector = Projector("eventstore_app", read_models=(TallyView,))


@tally_projector.on(TallyOpened)
def _opened(evt, record):
    TallyView.objects.create(uuid=record.aggregate_uuid, name=evt.name, last_event_id=record.id)


@tally_projector.on(TallyIncremented)
def _incremented(evt, record):
    TallyView.objects.filter(uuid=record.aggregate_uuid).update(
        total=F("total") + evt.amount, increments=F("increments") + 1, last_event_id=record.id
    )
