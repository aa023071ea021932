"""Custodians API: the registered connectors and their health; the inbound webhook; the
customers' deposits and withdrawals (read; they start at /accounts/{uuid}/deposit, /withdraw)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api import account_for
from apps.core.api import ErrorSerializer, StandardPagination, page_of
from apps.core.errors import NotFound
from apps.custodians.models import CustodianMovement
from apps.custodians.selectors import custodian_list, movement_get, movement_list
from apps.custodians.serializers import DepositSerializer, WithdrawalSerializer
from apps.custodians.services import custodian_webhook_receive

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 429)}


class CircuitSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    consecutive_failures = serializers.IntegerField()
    recent_failure_rate = serializers.CharField(
        allow_null=True, help_text='Share of the last calls that failed, e.g. "0.30"'
    )
    opened_at = serializers.DateTimeField(allow_null=True)
    retry_at = serializers.DateTimeField(
        allow_null=True, help_text="When an open circuit lets a trial call through"
    )
    last_failure_at = serializers.DateTimeField(allow_null=True)


class ReconciliationSummarySerializer(serializers.Serializer):
    checked_at = serializers.DateTimeField()
    clean = serializers.BooleanField()


class CustodianSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    connector = serializers.CharField()
    is_default = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["available", "degraded", "unavailable"])
    circuit = CircuitSerializer()
    last_balance_sync = serializers.DateTimeField(allow_null=True)
    last_reconciliation = ReconciliationSummarySerializer(allow_null=True)
    open_discrepancies = serializers.IntegerField()


class WebhookReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField(help_text="The event id was processed before")
    event_id = serializers.CharField()


class CustodianListView(APIView):
    """Registered custodians and their health (circuit breaker, last sync and reconciliation):
    staff only, since circuit states and open discrepancies tell an attacker when to strike."""

    @extend_schema(responses={200: CustodianSerializer(many=True), **ERRORS})
    def get(self, request):
        if not request.user.has_perm("custodians.view_circuitbreakerstate"):
            raise PermissionDenied("Only staff see the custodians' health.")
        return Response(CustodianSerializer(custodian_list(), many=True).data)


class CustodianWebhookView(APIView):
    """An inbound custodian event. Authenticated by its HMAC signature, not a token:
    `X-Custodian-Timestamp` (unix seconds) and `X-Custodian-Signature` (hex HMAC-SHA256 of
    "<timestamp>.<raw body>" with the custodian's webhook secret)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # A custodian may send bursts; every request is checked by its signature before any work.
    throttle_classes: list = []

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("X-Custodian-Timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Custodian-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={200: WebhookReceiptSerializer, **ERRORS},
    )
    def post(self, request, code):
        outcome = custodian_webhook_receive(
            code=code,
            body=request.body,
            timestamp=request.headers.get("X-Custodian-Timestamp"),
            signature=request.headers.get("X-Custodian-Signature"),
        )
        body = {
            "received": True,
            "duplicate": outcome.duplicate,
            "event_id": outcome.event.event_id,
        }
        return Response(WebhookReceiptSerializer(body).data, status=status.HTTP_200_OK)


# --- deposits and withdrawals ----------------------------------------------------------------


class MovementQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CustodianMovement.Status.choices, required=False)


class _AccountMovementsView(APIView):
    kind = CustodianMovement.Kind.DEPOSIT
    serializer_class: type[serializers.Serializer] = DepositSerializer

    def get(self, request, account_uuid):
        account_for(request, account_uuid)
        query = MovementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        movements = movement_list(
            account_uuid=account_uuid, kind=self.kind, status=query.validated_data.get("status")
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(movements, request, view=self)
        return paginator.get_paginated_response(self.serializer_class(page, many=True).data)


class AccountDepositsView(_AccountMovementsView):
    """The account's deposits, newest first."""

    @extend_schema(
        parameters=[MovementQuerySerializer],
        responses={200: page_of(DepositSerializer), **ERRORS},
    )
    def get(self, request, account_uuid):
        return super().get(request, account_uuid)


class AccountWithdrawalsView(_AccountMovementsView):
    """The account's withdrawals, newest first."""

    kind = CustodianMovement.Kind.WITHDRAWAL
    serializer_class = WithdrawalSerializer

    @extend_schema(
        parameters=[MovementQuerySerializer],
        responses={200: page_of(WithdrawalSerializer), **ERRORS},
    )
    def get(self, request, account_uuid):
        return super().get(request, account_uuid)


class _MovementDetailView(APIView):
    kind = CustodianMovement.Kind.DEPOSIT
    serializer_class: type[serializers.Serializer] = DepositSerializer

    def get(self, request, movement_uuid):
        movement = movement_get(movement_uuid, kind=self.kind)
        try:
            account_for(request, movement.account_uuid)
        except NotFound:
            # Someone else's: as if it did not exist.
            raise NotFound(f"No such {self.kind}.", details={"uuid": str(movement_uuid)}) from None
        return Response(self.serializer_class(movement).data)


class DepositDetailView(_MovementDetailView):
    """One deposit, as it stands."""

    @extend_schema(responses={200: DepositSerializer, **ERRORS})
    def get(self, request, movement_uuid):
        return super().get(request, movement_uuid)


class WithdrawalDetailView(_MovementDetailView):
    """One withdrawal, as it stands."""

    kind = CustodianMovement.Kind.WITHDRAWAL
    serializer_class = WithdrawalSerializer

    @extend_schema(responses={200: WithdrawalSerializer, **ERRORS})
    def get(self, request, movement_uuid):
        return super().get(request, movement_uuid)
