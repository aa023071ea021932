"""Read side of payments."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from apps.core.errors import NotFound
from apps.payments.models import Transfer


def transfer_get(transfer_uuid: uuid.UUID) -> Transfer:
    transfer = Transfer.objects.filter(uuid=transfer_uuid).first()
    if transfer is None:
        raise NotFound("No such transfer.", details={"uuid": str(transfer_uuid)})
    return transfer


def transfer_list(
    *, account_uuid: uuid.UUID | None = None, owner_uuid: uuid.UUID | None = None
) -> QuerySet[Transfer]:
    """Transfers in and out of one account, or of every account of one owner, newest first."""
    transfers = Transfer.objects.all()
    if account_uuid is not None:
        transfers = transfers.filter(
            Q(from_account_id=account_uuid) | Q(to_account_id=account_uuid)
        )
    if owner_uuid is not None:
        transfers = transfers.filter(
            Q(from_account__owner_id=owner_uuid) | Q(to_account__owner_id=owner_uuid)
        )
    return transfers.order_by("-created_at", "uuid")
