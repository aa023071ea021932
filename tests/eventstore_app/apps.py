from django.apps import AppConfig


class EventStoreTestAppConfig(AppConfig):
    """A tiny event-sourced domain that exercises the kernel without any production app."""

    name = "tests.eventstore_app"
    label = "eventstore_app"
