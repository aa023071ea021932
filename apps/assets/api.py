"""Assets and exchange rates API (read-only)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.assets.models import AssetType, RateSource
from apps.assets.selectors import (
    asset_get,
    asset_list,
    convert,
    exchange_rate_get,
    exchange_rate_list,
    exchange_rate_quote,
)
from apps.core.api import ErrorSerializer, JsonIntegerField, StandardPagination, page_of
from apps.core.errors import AssetNotFound, NotFound

ERRORS = {code: ErrorSerializer for code in (400, 401, 404, 422, 429)}


def plain(value) -> str | None:
    """A Decimal in plain notation without trailing zeros ("0.0000000691", never "6.91E-8")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


class AssetSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    precision = serializers.IntegerField()
    is_active = serializers.BooleanField()


class AssetQuerySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AssetType.values, required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)


class RateSerializer(serializers.Serializer):
    """One current quote: 1 `from` is worth `rate` `to` at the mid; a customer converting gets
    `bid`, and pays `ask` for the reverse."""

    rate_fields = ("rate", "bid", "ask")

    def to_representation(self, quote):
        return {
            "from": quote.from_code,
            "to": quote.to_code,
            **{name: plain(getattr(quote, name)) for name in self.rate_fields},
            "source": quote.source,
            "valid_at": serializers.DateTimeField().to_representation(quote.valid_at),
            "expires_at": quote.expires_at
            and serializers.DateTimeField().to_representation(quote.expires_at),
        }


class RateDocSerializer(serializers.Serializer):
    """Documents RateSerializer's output for the schema."""

    to = serializers.CharField()
    rate = serializers.CharField(help_text="Decimal string")
    bid = serializers.CharField(allow_null=True)
    ask = serializers.CharField(allow_null=True)
    source = serializers.CharField()
    valid_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        return {"from": serializers.CharField(), **fields}


class RateQuerySerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=RateSource.values, required=False)

    def get_fields(self):
        fields = super().get_fields()
        optional = {"required": False, "max_length": 10}
        return {
            "from": serializers.CharField(**optional),
            "to": serializers.CharField(**optional),
            **fields,
        }


class ConvertQuerySerializer(serializers.Serializer):
    amount = JsonIntegerField(in_query=True, min_value=0, max_value=10**18, help_text="Minor units")


class ConversionSerializer(serializers.Serializer):
    """The customer's quote: `converted_amount` at the bid `rate`, rounded down."""

    to = serializers.CharField(source="to_code")
    amount = serializers.IntegerField()
    converted_amount = serializers.IntegerField()
    rate = serializers.SerializerMethodField()

    def get_fields(self):
        return {"from": serializers.CharField(source="from_code"), **super().get_fields()}

    def get_rate(self, conversion) -> str:
        return plain(conversion.rate)


class AssetListView(APIView):
    @extend_schema(
        parameters=[AssetQuerySerializer],
        responses={200: page_of(AssetSerializer)},
        operation_id="v1_assets_list",
    )
    def get(self, request):
        query = AssetQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        assets = asset_list(**query.validated_data).order_by("code")
        paginator = StandardPagination()
        page = paginator.paginate_queryset(assets, request, view=self)
        return paginator.get_paginated_response(AssetSerializer(page, many=True).data)


class AssetDetailView(APIView):
    @extend_schema(responses={200: AssetSerializer, **ERRORS})
    def get(self, request, code):
        try:
            return Response(AssetSerializer(asset_get(code)).data)
        except AssetNotFound:
            raise NotFound("No such asset.", details={"code": code}) from None


class ExchangeRateListView(APIView):
    @extend_schema(
        parameters=[RateQuerySerializer],
        responses={200: page_of(RateDocSerializer)},
        operation_id="v1_exchange_rates_list",
    )
    def get(self, request):
        query = RateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        rates = exchange_rate_list(
            from_code=params.get("from"), to_code=params.get("to"), source=params.get("source")
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(rates, request, view=self)
        quotes = [exchange_rate_quote(row) for row in page]
        return paginator.get_paginated_response(RateSerializer(quotes, many=True).data)


class ExchangeRateDetailView(APIView):
    @extend_schema(responses={200: RateDocSerializer, **ERRORS})
    def get(self, request, from_code, to_code):
        return Response(RateSerializer(exchange_rate_get(from_code, to_code)).data)


class ExchangeRateConvertView(APIView):
    @extend_schema(
        parameters=[ConvertQuerySerializer, OpenApiParameter("amount", int, required=True)],
        responses={200: ConversionSerializer, **ERRORS},
    )
    def get(self, request, from_code, to_code):
        query = ConvertQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        conversion = convert(query.validated_data["amount"], from_code, to_code)
        return Response(ConversionSerializer(conversion).data)
