from django.db import models

from apps.core.models import StoredEvent


class TallyEvent(StoredEvent):
    pass


class TallyView(models.Model):
    uuid = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=100)
    total = models.BigIntegerField(default=0)
    increments = models.PositiveIntegerField(default=0)
    last_event_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.total}"
