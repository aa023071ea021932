"""Base class for management commands: the events they write name the command as actor."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.core.context import command_context, new_request_id


class AuditedCommand(BaseCommand):
    def execute(self, *args, **options):
        name = type(self).__module__.rsplit(".", 1)[-1]
        request_id = new_request_id()
        with command_context(
            actor={"type": "command", "id": name}, request_id=request_id, correlation_id=request_id
        ):
            return super().execute(*args, **options)
