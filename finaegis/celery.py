"""The Celery app. Tasks open a command context so the events they write name the job."""

from __future__ import annotations

import os
from contextlib import ExitStack

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finaegis.settings")

app = Celery("finaegis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_open_contexts: dict[str, ExitStack] = {}


@task_prerun.connect
def _open_task_context(task_id=None, task=None, **_):
    from apps.core.context import command_context

    correlation_id = getattr(task.request, "correlation_id", None) or task_id
    stack = ExitStack()
    stack.enter_context(
        command_context(
            actor={"type": "task", "id": task.name},
            request_id=task_id,
            correlation_id=correlation_id,
        )
    )
    _open_contexts[task_id] = stack


@task_postrun.connect
def _close_task_context(task_id=None, **_):
    stack = _open_contexts.pop(task_id, None)
    if stack is not None:
        stack.close()
