"""Transfers and conversion API."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import (
    ErrorSerializer,
    MinorUnitsField,
    StandardPagination,
    idempotent_response,
    page_of,
)
from apps.core.errors import ApprovalRequired, InvalidInput, NotFound
from apps.payments.limits import operation_limit_take_many
from apps.payments.models import Transfer
from apps.payments.selectors import transfer_get, transfer_list
from apps.payments.services import (
    TransferRequest,
    conversion_create,
    manual_movement_submit,
    transfer_bulk_create,
    transfer_create,
    transfer_reverse,
)

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 422, 429)}
MAX_BULK_ITEMS = 100


class TransferSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    from_account = serializers.UUIDField(source="from_account_id")
    to_account = serializers.UUIDField(source="to_account_id")
    asset_code = serializers.CharField(source="from_asset")
    amount = serializers.IntegerField()
    to_asset_code = serializers.CharField(source="to_asset")
    to_amount = serializers.IntegerField()
    exchange_rate = serializers.SerializerMethodField()
    reference = serializers.CharField()
    reason = serializers.CharField(help_text="Why staff moved it; empty for customers' own")
    created_at = serializers.DateTimeField()
    reversed_at = serializers.DateTimeField(allow_null=True)

    def get_exchange_rate(self, transfer: Transfer) -> str | None:
        # Plain notation: a tiny rate must not come out as "6.9E-8".
        return None if transfer.rate is None else format(transfer.rate.normalize(), "f")


class PendingApprovalSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    status = serializers.CharField(help_text='"pending_approval" until another staff member acts')


class TransferCreateSerializer(serializers.Serializer):
    from_account = serializers.UUIDField()
    to_account = serializers.UUIDField()
    amount = MinorUnitsField()
    asset_code = serializers.CharField(max_length=10)
    to_asset_code = serializers.CharField(max_length=10, required=False, allow_null=True)
    reference = serializers.CharField(max_length=255, required=False, allow_blank=True)
    reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Staff moving money out of a customer's account say why",
    )


class BulkSerializer(serializers.Serializer):
    transfers = TransferCreateSerializer(many=True, allow_empty=False, max_length=MAX_BULK_ITEMS)
    atomic = serializers.BooleanField(default=True)


class BulkItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.CharField()
    transfer = TransferSerializer(allow_null=True)
    error = serializers.DictField(allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    atomic = serializers.BooleanField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BulkItemSerializer(many=True)


class ReverseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    force = serializers.BooleanField(
        default=False, help_text="Reverse even if the receiver spent the money"
    )


class ConvertSerializer(serializers.Serializer):
    account_uuid = serializers.UUIDField()
    from_asset = serializers.CharField(max_length=10)
    to_asset = serializers.CharField(max_length=10)
    amount = MinorUnitsField()


def _others_sources(request, account_uuids) -> list:
    """The source accounts the caller may move money out of (else 404/403) but does not own:
    staff acting on a customer's account."""
    from apps.accounts.api import TRANSACT, accounts_for

    accounts = accounts_for(request, sorted(account_uuids), TRANSACT)
    return [account for account in accounts if account.owner_id != request.user.uuid]


def _require_sources(request, account_uuids) -> None:
    """The caller must be allowed to move money out of each source account, and own it: staff
    move a customer's money only with a reason, behind maker-checker (a single transfer or an
    adjustment), never in a batch or a conversion."""
    others = _others_sources(request, account_uuids)
    if others:
        raise ApprovalRequired(
            "Staff move a customer's money one transfer or adjustment at a time, with a reason, "
            "approved by a second staff member above the threshold.",
            details={"account": str(others[0].uuid)},
        )


def _staff_transfer(data: dict) -> tuple[int, dict]:
    """A transfer out of a customer's account by staff: the approval path of adjustments."""
    if not data.get("reason", "").strip():
        raise InvalidInput(details={"reason": ["staff moving a customer's money give a reason"]})
    if data.get("to_asset_code") not in (None, data["asset_code"]):
        raise InvalidInput(details={"to_asset_code": ["staff transfers stay in one asset"]})
    return staff_movement_response(
        kind="transfer",
        account_uuid=data["from_account"],
        to_account=data["to_account"],
        asset_code=data["asset_code"],
        amount=data["amount"],
        reason=data["reason"],
        reference=data.get("reference", ""),
    )


def staff_movement_response(**movement) -> tuple[int, dict]:
    """Submit a staff movement of a customer's money: 201 and the transfer when booked, 202 and
    the request while it waits for a second staff member."""
    outcome = manual_movement_submit(**movement)
    if outcome.transfer is not None:
        return status.HTTP_201_CREATED, TransferSerializer(outcome.transfer).data
    pending = {"uuid": outcome.request.uuid, "status": "pending_approval"}
    return status.HTTP_202_ACCEPTED, PendingApprovalSerializer(pending).data


def _take_limit(request, op: str, transfers: list) -> None:
    """Count these completed movements against the caller's limits, one operation each; called
    inside the command's transaction, so a refusal (429) rolls the movements back."""
    moved = [(transfer.from_asset, transfer.amount) for transfer in transfers]
    operation_limit_take_many(op=op, user_key=str(request.user.uuid), moved=moved)


def _visible_transfers(user):
    from apps.accounts.api import visible_accounts

    if user.has_perm("payments.view_transfer"):
        return Transfer.objects.all()
    accounts = visible_accounts(user).values("uuid")
    return Transfer.objects.filter(Q(from_account__in=accounts) | Q(to_account__in=accounts))


def _to_request(item: dict) -> TransferRequest:
    return TransferRequest(
        from_account=item["from_account"],
        to_account=item["to_account"],
        amount=item["amount"],
        asset_code=item["asset_code"],
        to_asset_code=item.get("to_asset_code"),
        reference=item.get("reference", ""),
    )


class TransferListView(APIView):
    required_scopes = {"GET": "read", "POST": "transfer"}

    @extend_schema(
        responses={200: page_of(TransferSerializer), **ERRORS}, operation_id="v1_transfers_list"
    )
    def get(self, request):
        transfers = _visible_transfers(request.user).order_by("-created_at", "uuid")
        paginator = StandardPagination()
        page = paginator.paginate_queryset(transfers, request, view=self)
        return paginator.get_paginated_response(TransferSerializer(page, many=True).data)

    @extend_schema(
        request=TransferCreateSerializer,
        responses={201: TransferSerializer, 202: PendingApprovalSerializer, **ERRORS},
        description=(
            "Staff moving money out of an account they do not own give a `reason`; above "
            "MAKER_CHECKER_THRESHOLD_USD the transfer waits (202) for a second staff member."
        ),
    )
    def post(self, request):
        data = TransferCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if _others_sources(request, [data.validated_data["from_account"]]):
            return idempotent_response(request, lambda: _staff_transfer(data.validated_data))
        data.validated_data.pop("reason", None)

        def move():
            transfer = transfer_create(**data.validated_data)
            _take_limit(request, "transfer", [transfer])
            return status.HTTP_201_CREATED, TransferSerializer(transfer).data

        return idempotent_response(request, move)


class TransferDetailView(APIView):
    @extend_schema(responses={200: TransferSerializer, **ERRORS})
    def get(self, request, transfer_uuid):
        transfer = _visible_transfers(request.user).filter(uuid=transfer_uuid).first()
        if transfer is None:
            raise NotFound("No such transfer.", details={"uuid": str(transfer_uuid)})
        return Response(TransferSerializer(transfer).data)


class TransferReverseView(APIView):
    required_scopes = {"POST": "transfer"}

    @extend_schema(request=ReverseSerializer, responses={200: TransferSerializer, **ERRORS})
    def post(self, request, transfer_uuid):
        if not _visible_transfers(request.user).filter(uuid=transfer_uuid).exists():
            raise NotFound("No such transfer.", details={"uuid": str(transfer_uuid)})
        if not request.user.has_perm("payments.reverse_transfer"):
            raise PermissionDenied("Only staff may reverse a transfer.")
        data = ReverseSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def reverse():
            transfer_reverse(transfer_uuid=transfer_uuid, **data.validated_data)
            return status.HTTP_200_OK, TransferSerializer(transfer_get(transfer_uuid)).data

        return idempotent_response(request, reverse)


class BulkTransferView(APIView):
    required_scopes = {"POST": "transfer"}

    @extend_schema(request=BulkSerializer, responses={201: BulkResultSerializer, **ERRORS})
    def post(self, request):
        data = BulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = data.validated_data["transfers"]
        _require_sources(request, {item["from_account"] for item in items})
        atomic = data.validated_data["atomic"]

        def move():
            results = transfer_bulk_create(transfers=[_to_request(i) for i in items], atomic=atomic)
            # every completed item is a transfer, and the batch is counted at once: all or none
            completed_transfers = [r.transfer for r in results if r.transfer is not None]
            _take_limit(request, "transfer", completed_transfers)
            completed = sum(r.status == "completed" for r in results)
            body = {
                "atomic": atomic,
                "completed": completed,
                "failed": len(results) - completed,
                "results": results,
            }
            return status.HTTP_201_CREATED, BulkResultSerializer(body).data

        return idempotent_response(request, move)


class ConvertView(APIView):
    required_scopes = {"POST": "transfer"}

    @extend_schema(request=ConvertSerializer, responses={201: TransferSerializer, **ERRORS})
    def post(self, request):
        data = ConvertSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _require_sources(request, [data.validated_data["account_uuid"]])

        def convert():
            transfer = conversion_create(**data.validated_data)
            _take_limit(request, "conversion", [transfer])
            return status.HTTP_201_CREATED, TransferSerializer(transfer).data

        return idempotent_response(request, convert)


def account_transfers_page(request, view, account_uuid) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(transfer_list(account_uuid=account_uuid), request, view=view)
    return paginator.get_paginated_response(TransferSerializer(page, many=True).data)
