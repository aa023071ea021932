"""Baskets (GCU) and bank allocation API (API.md, "Baskets (GCU) and bank allocation")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api import TRANSACT, account_for
from apps.assets.api import plain
from apps.baskets.models import BasketAsset
from apps.baskets.selectors import (
    bank_allocation_get,
    bank_distribution_preview,
    basket_get,
    basket_list,
    basket_unit_value,
    basket_value_history,
)
from apps.baskets.services import (
    bank_allocation_set,
    basket_compose,
    basket_decompose,
    basket_rebalance,
)
from apps.core.api import (
    ErrorSerializer,
    MinorUnitsField,
    StandardPagination,
    idempotent_response,
    page_of,
)
from apps.payments.limits import operation_limit_take_many

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 422, 429)}
REBALANCE = "baskets.rebalance_basket"


# --- serializers ---------------------------------------------------------------------------------


class ComponentSerializer(serializers.Serializer):
    asset_code = serializers.CharField()
    weight = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="percent")
    min_weight = serializers.DecimalField(max_digits=5, decimal_places=2)
    max_weight = serializers.DecimalField(max_digits=5, decimal_places=2)


class BasketSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField(help_text="fixed | dynamic")
    rebalance_frequency = serializers.CharField()
    last_rebalanced_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    components = serializers.SerializerMethodField()
    pending_composition = serializers.SerializerMethodField()

    def get_components(self, basket: BasketAsset) -> list[dict]:
        components = sorted(basket.components.all(), key=lambda c: c.position)
        return ComponentSerializer(components, many=True).data

    def get_pending_composition(self, basket: BasketAsset) -> dict | None:
        """A composition decided by a vote, waiting for its day."""
        if basket.pending_components is None:
            return None
        return {
            "effective_on": basket.pending_effective_on,
            "poll_uuid": basket.pending_poll_uuid,
            "components": basket.pending_components,
        }


class ComponentValueSerializer(serializers.Serializer):
    asset_code = serializers.CharField()
    weight = serializers.DecimalField(max_digits=5, decimal_places=2)
    quantity = serializers.SerializerMethodField(
        help_text="minor units of the asset per minor unit of the basket, fixed at rebalance"
    )
    rate = serializers.SerializerMethodField(help_text="USD per unit of the asset")
    contribution = serializers.SerializerMethodField(help_text="USD per basket unit")
    share = serializers.DecimalField(
        max_digits=5, decimal_places=2, help_text="percent of the basket's value"
    )

    def get_quantity(self, part) -> str:
        return plain(part.quantity)

    def get_rate(self, part) -> str:
        return plain(part.rate)

    def get_contribution(self, part) -> str:
        return plain(part.contribution)


class ValueSerializer(serializers.Serializer):
    code = serializers.CharField()
    value = serializers.SerializerMethodField(help_text="USD per basket unit, a decimal string")
    currency = serializers.CharField()
    calculated_at = serializers.DateTimeField()
    components = ComponentValueSerializer(many=True)

    def get_value(self, valuation) -> str:
        return plain(valuation.value)


class HistoryPointSerializer(serializers.Serializer):
    value = serializers.SerializerMethodField()
    currency = serializers.CharField()
    calculated_at = serializers.DateTimeField()

    def get_value(self, point) -> str:
        return plain(point.value)


class HistoryQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class OperationRequestSerializer(serializers.Serializer):
    basket_code = serializers.CharField(max_length=10)
    amount = MinorUnitsField(help_text="Basket units, minor units of the basket asset")


class OperationComponentSerializer(serializers.Serializer):
    asset_code = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units")
    weight = serializers.CharField()


class OperationSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Also the journal entry of the postings")
    type = serializers.CharField(source="kind", help_text="compose | decompose")
    account_uuid = serializers.UUIDField(source="account_id")
    basket_code = serializers.CharField()
    amount = serializers.IntegerField()
    components = OperationComponentSerializer(many=True)
    created_at = serializers.DateTimeField()


class AllocationEntrySerializer(serializers.Serializer):
    bank_code = serializers.CharField(max_length=20)
    percentage = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100
    )
    is_primary = serializers.BooleanField(default=False)


class AllocationSerializer(serializers.Serializer):
    allocations = AllocationEntrySerializer(many=True)
    diversified = serializers.BooleanField(read_only=True)
    is_default = serializers.BooleanField(read_only=True, help_text="no split chosen yet")


class AllocationUpdateSerializer(serializers.Serializer):
    allocations = AllocationEntrySerializer(many=True, allow_empty=False, max_length=20)


class PreviewQuerySerializer(serializers.Serializer):
    amount = MinorUnitsField(in_query=True)
    asset_code = serializers.CharField(max_length=10, default="EUR")


class PreviewSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    asset_code = serializers.CharField()
    distribution = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(
        child=serializers.DictField(), help_text="shares above a bank's deposit insurance"
    )


def _allocation_body(user_uuid) -> dict:
    allocation = bank_allocation_get(user_uuid)
    body = {
        "allocations": allocation.entries,
        "diversified": allocation.diversified,
        "is_default": allocation.is_default,
    }
    return AllocationSerializer(body).data


# --- views ---------------------------------------------------------------------------------------


class BasketListView(APIView):
    @extend_schema(responses={200: page_of(BasketSerializer)}, operation_id="v1_baskets_list")
    def get(self, request):
        paginator = StandardPagination()
        page = paginator.paginate_queryset(basket_list(), request, view=self)
        return paginator.get_paginated_response(BasketSerializer(page, many=True).data)


class BasketDetailView(APIView):
    @extend_schema(responses={200: BasketSerializer, **ERRORS})
    def get(self, request, basket_code):
        return Response(BasketSerializer(basket_get(basket_code)).data)


class BasketValueView(APIView):
    @extend_schema(
        responses={200: ValueSerializer, **ERRORS},
        description="The value of one basket unit in USD now; 422 EXCHANGE_RATE_NOT_FOUND when "
        "a component has no rate.",
    )
    def get(self, request, basket_code):
        basket = basket_get(basket_code)
        return Response(ValueSerializer(basket_unit_value(basket.code)).data)


class BasketHistoryView(APIView):
    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={200: page_of(HistoryPointSerializer), **ERRORS},
    )
    def get(self, request, basket_code):
        basket = basket_get(basket_code)
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = basket_value_history(basket.code, **query.validated_data)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(values, request, view=self)
        return paginator.get_paginated_response(HistoryPointSerializer(page, many=True).data)


class BasketRebalanceView(APIView):
    @extend_schema(request=None, responses={200: BasketSerializer, **ERRORS})
    def post(self, request, basket_code):
        basket_get(basket_code)
        if not request.user.has_perm(REBALANCE):
            raise PermissionDenied("Only staff may rebalance a basket.")
        return Response(BasketSerializer(basket_rebalance(code=basket_code)).data)


class _OperationView(APIView):
    required_scopes = {"POST": "transfer"}
    operation = staticmethod(basket_compose)

    def post(self, request, account_uuid):
        account_for(request, account_uuid, TRANSACT)
        data = OperationRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def run():
            done = type(self).operation(account_uuid=account_uuid, **data.validated_data)
            # Valued by its components, which leave the account (compose) or come back
            # (decompose); inside the transaction, so a refusal (429) undoes the operation.
            operation_limit_take_many(
                op="basket",
                user_key=str(request.user.uuid),
                moved=[(part["asset_code"], part["amount"]) for part in done.components],
                count=1,
            )
            return status.HTTP_201_CREATED, OperationSerializer(done).data

        return idempotent_response(request, run)


class ComposeView(_OperationView):
    operation = staticmethod(basket_compose)

    @extend_schema(
        request=OperationRequestSerializer,
        responses={201: OperationSerializer, **ERRORS},
        description="Turn components held in the account into basket units. Accepts an "
        "Idempotency-Key.",
    )
    def post(self, request, account_uuid):
        return super().post(request, account_uuid)


class DecomposeView(_OperationView):
    operation = staticmethod(basket_decompose)

    @extend_schema(
        request=OperationRequestSerializer,
        responses={201: OperationSerializer, **ERRORS},
        description="Turn basket units held in the account back into components. Accepts an "
        "Idempotency-Key.",
    )
    def post(self, request, account_uuid):
        return super().post(request, account_uuid)


class BankAllocationView(APIView):
    required_scopes = {"GET": "read", "PUT": "accounts"}

    @extend_schema(responses={200: AllocationSerializer})
    def get(self, request):
        return Response(_allocation_body(request.user.uuid))

    @extend_schema(
        request=AllocationUpdateSerializer, responses={200: AllocationSerializer, **ERRORS}
    )
    def put(self, request):
        data = AllocationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bank_allocation_set(
            user_uuid=request.user.uuid, allocations=data.validated_data["allocations"]
        )
        return Response(_allocation_body(request.user.uuid))


class DistributionPreviewView(APIView):
    @extend_schema(
        parameters=[PreviewQuerySerializer], responses={200: PreviewSerializer, **ERRORS}
    )
    def get(self, request):
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        preview = bank_distribution_preview(request.user.uuid, **query.validated_data)
        return Response(PreviewSerializer(preview).data)
