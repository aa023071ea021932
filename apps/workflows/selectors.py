"""Read side of workflows: runs, their step logs and leases."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.workflows.models import WorkflowLease, WorkflowRun, WorkflowStep


def workflow_run_get(run_uuid: uuid.UUID) -> WorkflowRun:
    run = WorkflowRun.objects.filter(uuid=run_uuid).first()
    if run is None:
        raise NotFound("No such workflow run.", details={"uuid": str(run_uuid)})
    return run


def workflow_run_list(
    *,
    workflow_type: str | None = None,
    status: str | None = None,
    parent: uuid.UUID | None = None,
) -> QuerySet[WorkflowRun]:
    runs = WorkflowRun.objects.all()
    if workflow_type is not None:
        runs = runs.filter(workflow_type=workflow_type)
    if status is not None:
        runs = runs.filter(status=status)
    if parent is not None:
        runs = runs.filter(parent_id=parent)
    return runs.order_by("-created_at", "uuid")


def workflow_steps(run_uuid: uuid.UUID) -> QuerySet[WorkflowStep]:
    return WorkflowStep.objects.filter(run_id=run_uuid).order_by("position")


def workflow_lease_get(run_uuid: uuid.UUID) -> WorkflowLease | None:
    return WorkflowLease.objects.filter(run_uuid=run_uuid).first()


def workflow_runs_waiting_on(external_id: str) -> list[uuid.UUID]:
    """Active runs with a step that created `external_id` outside (a custodian transaction)."""
    return list(
        WorkflowStep.objects.filter(
            external_id=external_id,
            run__status__in=(WorkflowRun.Status.RUNNING, WorkflowRun.Status.COMPENSATING),
        )
        .values_list("run_id", flat=True)
        .distinct()
    )
