from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Event store"

    def ready(self) -> None:
        # Events, aggregates, projectors and reactors register themselves on import; loading
        # them here means a replay or a verification never misses an app's handlers.
        autodiscover_modules("events", "aggregates", "projectors", "reactors")
