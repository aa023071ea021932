"""Accounts API: the caller's accounts, balances, history, turnover, deposits and withdrawals."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from guardian.shortcuts import get_objects_for_user
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Account
from apps.accounts.selectors import (
    HISTORY_TYPES,
    account_balances,
    account_get,
    account_history,
    account_history_count,
    account_object_permissions,
    account_turnover,
)
from apps.accounts.services import account_close, account_freeze, account_open, account_unfreeze
from apps.core import sql
from apps.core.api import (
    ErrorSerializer,
    JsonIntegerField,
    MinorUnitsField,
    StandardPagination,
    idempotent_response,
    page_of,
)
from apps.core.errors import NotFound
from apps.custodians.models import CustodianMovement
from apps.custodians.selectors import movement_get
from apps.custodians.serializers import DepositSerializer, WithdrawalSerializer
from apps.custodians.services import (
    custodian_asset_check,
    custodian_deposit_start,
    custodian_withdrawal_start,
)
from apps.payments.api import (
    PendingApprovalSerializer,
    TransferSerializer,
    account_transfers_page,
    staff_movement_response,
)
from apps.payments.limits import operation_limit_take

VIEW, TRANSACT, FREEZE, CLOSE = (
    "accounts.view_account",
    "accounts.transact_account",
    "accounts.freeze_account",
    "accounts.close_account",
)
ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 422, 429)}


def visible_accounts(user):
    """Accounts the user may see: its own (object permission) or all (staff model permission)."""
    return get_objects_for_user(user, VIEW, klass=Account, accept_global_perms=True)


def account_for(request, account_uuid: uuid.UUID, permission: str | None = None) -> Account:
    """The account if the caller may see it (else 404: existence is not revealed) and, when
    `permission` is given, may do that with it (else 403)."""
    (account,) = accounts_for(request, [account_uuid], permission)
    return account


def accounts_for(
    request, account_uuids: list[uuid.UUID], permission: str | None = None
) -> list[Account]:
    """`account_for` of several accounts at once: one query for the accounts and one for the
    caller's object permissions on all of them (a bulk request names up to 100)."""
    found = {account.uuid: account for account in sql.models_in(Account, "uuid", account_uuids)}
    held = _object_permissions(request.user, list(found))
    for account_uuid in account_uuids:
        account = found.get(account_uuid)
        if account is None or not may(request.user, VIEW, account, held):
            raise NotFound("No such account.", details={"uuid": str(account_uuid)})
        if permission and not may(request.user, permission, account, held):
            raise PermissionDenied("You may not do this with this account.")
    return [found[account_uuid] for account_uuid in account_uuids]


def _object_permissions(user, account_uuids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    if not user.is_authenticated:
        return {u: set() for u in account_uuids}
    return account_object_permissions(user, account_uuids)


def may(user, permission: str, account: Account, held: dict[uuid.UUID, set[str]]) -> bool:
    """An owner's object permission covers his own account; a staff role's model permission
    covers every account.

    Owners are the common caller, so their object permissions (`held`, from
    `account_object_permissions`) are looked at first; Django's model backend answers the
    second question (and says yes to a superuser).
    """
    if permission.split(".", 1)[1] in held.get(account.uuid, ()):
        return True
    return user.has_perm(permission)


class BalanceSerializer(serializers.Serializer):
    asset_code = serializers.CharField()
    balance = serializers.IntegerField(help_text="Minor units")
    balance_display = serializers.CharField(help_text='Decimal string, e.g. "100.50"')
    precision = serializers.IntegerField()


class AccountSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=200)
    user_uuid = serializers.UUIDField(source="owner_id", read_only=True, allow_null=True)
    kind = serializers.CharField(read_only=True)
    frozen = serializers.BooleanField(read_only=True)
    closed = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    balances = serializers.SerializerMethodField()

    def get_balances(self, account: Account) -> list[dict]:
        return BalanceSerializer(account_balances(account.uuid), many=True).data

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be blank")
        return value.strip()


class MovementRequestSerializer(serializers.Serializer):
    amount = MinorUnitsField()
    asset_code = serializers.CharField(max_length=10)
    reference = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Your reference for this movement, unique on the account: the same reference "
        "again returns the first movement (409 REFERENCE_REUSED if other details differ)",
    )


class DepositRequestSerializer(MovementRequestSerializer):
    source = serializers.CharField(
        max_length=64,
        required=False,
        help_text="Your own account at the custodian; default: your registered one",
    )


class WithdrawalRequestSerializer(MovementRequestSerializer):
    destination = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The account to pay at the custodian or elsewhere; default: your registered one",
    )


class FreezeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class UnfreezeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class HistoryEntrySerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="The journal entry (transfer) of this posting")
    type = serializers.CharField()
    asset_code = serializers.CharField()
    amount = serializers.IntegerField(help_text="Signed minor units: negative is money out")
    balance_after = serializers.IntegerField()
    reference = serializers.CharField()
    counterparty_account = serializers.UUIDField(allow_null=True)
    exchange_rate = serializers.DecimalField(
        source="rate", max_digits=40, decimal_places=18, allow_null=True, coerce_to_string=True
    )
    hash = serializers.CharField()
    created_at = serializers.DateTimeField()


class HistoryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = HistoryEntrySerializer(many=True)


class HistoryQuerySerializer(serializers.Serializer):
    asset_code = serializers.CharField(max_length=10, required=False)
    type = serializers.ChoiceField(choices=sorted(HISTORY_TYPES), required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    before = serializers.IntegerField(min_value=1, required=False, help_text="Page cursor")
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=20)


class TurnoverSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    asset_code = serializers.CharField()
    credit = serializers.IntegerField()
    debit = serializers.IntegerField()
    count = serializers.IntegerField()


class TurnoverQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["daily", "monthly"], default="daily")


def _account_response(account_uuid, status_code=status.HTTP_200_OK) -> Response:
    return Response(AccountSerializer(account_get(account_uuid)).data, status=status_code)


class AccountListView(APIView):
    required_scopes = {"GET": "read", "POST": "accounts"}

    @extend_schema(
        parameters=[OpenApiParameter("user", OpenApiTypes.UUID, description="staff: one owner")],
        responses={200: page_of(AccountSerializer), **ERRORS},
        operation_id="v1_accounts_list",
    )
    def get(self, request):
        accounts = visible_accounts(request.user).order_by("created_at", "uuid")
        owner = request.query_params.get("user")
        if owner:
            try:
                accounts = accounts.filter(owner_id=uuid.UUID(owner))
            except ValueError:
                raise serializers.ValidationError({"user": ["must be a uuid"]}) from None
        paginator = StandardPagination()
        page = paginator.paginate_queryset(accounts, request, view=self)
        return paginator.get_paginated_response(AccountSerializer(page, many=True).data)

    @extend_schema(request=AccountSerializer, responses={201: AccountSerializer, **ERRORS})
    def post(self, request):
        data = AccountSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_open(name=data.validated_data["name"], owner_uuid=request.user.uuid)
        return _account_response(account.uuid, status.HTTP_201_CREATED)


class AccountDetailView(APIView):
    required_scopes = {"GET": "read", "DELETE": "accounts"}

    @extend_schema(responses={200: AccountSerializer, **ERRORS})
    def get(self, request, account_uuid):
        return Response(AccountSerializer(account_for(request, account_uuid)).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, account_uuid):
        account_for(request, account_uuid, CLOSE)
        account_close(account_uuid=account_uuid)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _MovementView(APIView):
    """Start a custodian workflow for the account and answer 202 with its resource."""

    required_scopes = {"POST": "transfer"}
    request_serializer: type[serializers.Serializer] = DepositRequestSerializer
    resource_serializer: type[serializers.Serializer] = DepositSerializer
    start = staticmethod(custodian_deposit_start)
    kind = CustodianMovement.Kind.DEPOSIT
    limit_op = "deposit"

    def post(self, request, account_uuid):
        account_for(request, account_uuid, TRANSACT)
        data = self.request_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        # Asked of the custodian before our transaction opens: a slow bank holds no locks.
        values["asset_code"] = custodian_asset_check(asset_code=values["asset_code"])

        def move():
            run = type(self).start(account_uuid=account_uuid, **values)
            operation_limit_take(
                op=self.limit_op,
                user_key=str(request.user.uuid),
                asset_code=values["asset_code"],
                amount=values["amount"],
            )
            movement = movement_get(run.uuid, kind=self.kind)
            return status.HTTP_202_ACCEPTED, self.resource_serializer(movement).data

        return idempotent_response(request, move)


class DepositView(_MovementView):
    @extend_schema(
        request=DepositRequestSerializer,
        responses={202: DepositSerializer, **ERRORS},
        description=(
            "Take money in from your account at the default custodian: a custodian deposit "
            "workflow. 202 with the deposit, pending; the balance moves only when the custodian "
            "confirms (with the embedded mock bank, at once). 422 ASSET_NOT_DEPOSITABLE for an "
            "asset the custodian does not hold (GCU and other baskets: compose them), "
            "AMOUNT_TOO_LARGE above the asset's bound, ACCOUNT_FROZEN / ACCOUNT_CLOSED. A "
            "deposit your account at the custodian cannot cover ends failed."
        ),
    )
    def post(self, request, account_uuid):
        return super().post(request, account_uuid)


class WithdrawView(_MovementView):
    request_serializer = WithdrawalRequestSerializer
    resource_serializer = WithdrawalSerializer
    start = staticmethod(custodian_withdrawal_start)
    kind = CustodianMovement.Kind.WITHDRAWAL
    limit_op = "withdrawal"

    @extend_schema(
        request=WithdrawalRequestSerializer,
        responses={202: WithdrawalSerializer, **ERRORS},
        description=(
            "Pay money out through the default custodian: a custodian withdrawal workflow, which "
            "debits the account at once and credits it back if the payout fails or the bank "
            "returns it (status failed / returned). 202 with the withdrawal. A withdrawal beyond "
            "the balance is refused in the request with 422 INSUFFICIENT_FUNDS, and no run is "
            "stored; should another payment win the race before the debit, the withdrawal ends "
            "failed. Also 422 ASSET_NOT_DEPOSITABLE, AMOUNT_TOO_LARGE, ACCOUNT_FROZEN, "
            "ACCOUNT_CLOSED."
        ),
    )
    def post(self, request, account_uuid):
        return super().post(request, account_uuid)


class FreezeView(APIView):
    required_scopes = {"POST": "transfer"}

    @extend_schema(request=FreezeSerializer, responses={200: AccountSerializer, **ERRORS})
    def post(self, request, account_uuid):
        account_for(request, account_uuid, FREEZE)
        data = FreezeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account_freeze(account_uuid=account_uuid, reason=data.validated_data["reason"])
        return _account_response(account_uuid)


class UnfreezeView(APIView):
    required_scopes = {"POST": "transfer"}

    @extend_schema(request=UnfreezeSerializer, responses={200: AccountSerializer, **ERRORS})
    def post(self, request, account_uuid):
        account_for(request, account_uuid, FREEZE)
        data = UnfreezeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account_unfreeze(account_uuid=account_uuid, reason=data.validated_data.get("reason", ""))
        return _account_response(account_uuid)


class BalancesView(APIView):
    @extend_schema(responses={200: BalanceSerializer(many=True), **ERRORS})
    def get(self, request, account_uuid):
        account_for(request, account_uuid)
        return Response(BalanceSerializer(account_balances(account_uuid), many=True).data)


def _history_filters(query: dict) -> dict:
    return {
        "asset_code": query.get("asset_code"),
        "types": [query["type"]] if query.get("type") else None,
        "created_after": query.get("created_after"),
        "created_before": query.get("created_before"),
    }


class TransactionsView(APIView):
    @extend_schema(
        parameters=[HistoryQuerySerializer], responses={200: HistoryPageSerializer, **ERRORS}
    )
    def get(self, request, account_uuid):
        account_for(request, account_uuid)
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        rows = account_history(
            account_uuid,
            **_history_filters(params),
            before_version=params.get("before"),
            limit=params["page_size"] + 1,
        )
        page, more = rows[: params["page_size"]], len(rows) > params["page_size"]
        next_url = None
        if more:
            next_query = request.query_params.copy()
            next_query["before"] = str(page[-1].version)
            next_url = request.build_absolute_uri(f"{request.path}?{next_query.urlencode()}")
        body = {
            "count": account_history_count(account_uuid, **_history_filters(params)),
            "next": next_url,
            "previous": None,
            "results": HistoryEntrySerializer(page, many=True).data,
        }
        return Response(body)


class TurnoverView(APIView):
    @extend_schema(
        parameters=[TurnoverQuerySerializer], responses={200: TurnoverSerializer(many=True)}
    )
    def get(self, request, account_uuid):
        account_for(request, account_uuid)
        query = TurnoverQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = account_turnover(account_uuid, period=query.validated_data["period"])
        return Response(TurnoverSerializer(rows, many=True).data)


class AccountTransfersView(APIView):
    @extend_schema(responses={200: page_of(TransferSerializer), **ERRORS})
    def get(self, request, account_uuid):
        account_for(request, account_uuid)
        return account_transfers_page(request, self, account_uuid)


# --- ledger-only adjustments by staff, behind maker-checker ----------------------------------


class AdjustmentSerializer(serializers.Serializer):
    amount = JsonIntegerField(
        min_value=-(10**18),
        max_value=10**18,
        help_text="Signed integer minor units: positive credits the account, negative debits it",
    )
    asset_code = serializers.CharField(max_length=10)
    reason = serializers.CharField(max_length=500)
    reference = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_amount(self, value):
        if value == 0:  # the field already refuses anything but a JSON integer
            raise serializers.ValidationError("must not be zero")
        return value


class AdjustmentView(APIView):
    """Money booked in the ledger with no custodian movement behind it: a correction by staff."""

    required_scopes = {"POST": "transfer"}

    @extend_schema(
        request=AdjustmentSerializer,
        responses={201: TransferSerializer, 202: PendingApprovalSerializer, **ERRORS},
        description=(
            "Staff only. Booked at once up to MAKER_CHECKER_THRESHOLD_USD; above it, recorded "
            "as a request that another staff member approves in the console."
        ),
    )
    def post(self, request, account_uuid):
        account_for(request, account_uuid)
        if not request.user.has_perm(TRANSACT):  # the model permission: staff, not the owner
            raise PermissionDenied("Only staff may adjust the ledger.")
        data = AdjustmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return idempotent_response(request, lambda: _adjust(account_uuid, data.validated_data))


def _adjust(account_uuid: uuid.UUID, data: dict) -> tuple[int, dict]:
    amount = data["amount"]
    return staff_movement_response(
        kind="deposit" if amount > 0 else "withdrawal",
        account_uuid=account_uuid,
        asset_code=data["asset_code"],
        amount=abs(amount),
        reason=data["reason"],
        reference=data.get("reference", ""),
    )
