"""The deposit and withdrawal resources of the API (shared by the accounts API, which starts
them, and the custodians API, which reads them)."""

from __future__ import annotations

from rest_framework import serializers

from apps.assets.selectors import asset_precisions
from apps.core.money import format_minor_units
from apps.custodians.models import CustodianMovement


class CustodianMovementSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=CustodianMovement.Status.choices,
        help_text="pending until the custodian confirms; completed: booked; failed: nothing "
        "moved; returned: moved at the custodian, then sent or credited back",
    )
    account = serializers.UUIDField(source="account_uuid")
    asset_code = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units")
    amount_display = serializers.SerializerMethodField()
    custodian = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_amount_display(self, movement: CustodianMovement) -> str:
        precision = asset_precisions().get(movement.asset_code, 0)
        return format_minor_units(movement.amount, precision)


class DepositSerializer(CustodianMovementSerializer):
    source = serializers.CharField(
        source="counterparty", help_text="The customer's account at the custodian"
    )


class WithdrawalSerializer(CustodianMovementSerializer):
    destination = serializers.CharField(source="counterparty")
