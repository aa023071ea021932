"""The v1 API: every path of API.md, wired to the apps' views."""

from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import api as accounts
from apps.assets import api as assets
from apps.baskets import api as baskets
from apps.custodians import api as custodians
from apps.governance import api as governance
from apps.payments import api as payments
from apps.users import api as users

ROOT_LINKS = ("auth-me", "accounts", "transfers", "assets", "exchange-rates", "polls", "baskets")


class ApiRootView(APIView):
    """Entry points of the v1 API."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(
            {name: request.build_absolute_uri(reverse(name)) for name in ROOT_LINKS}
            | {"schema": request.build_absolute_uri(reverse("schema"))}
        )


urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("auth/register", users.RegisterView.as_view(), name="auth-register"),
    path("auth/login", users.LoginView.as_view(), name="auth-login"),
    path("auth/logout", users.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", users.MeView.as_view(), name="auth-me"),
    path("auth/tokens", users.TokenListView.as_view(), name="auth-tokens"),
    path("auth/tokens/<uuid:token_id>", users.TokenDetailView.as_view(), name="auth-token"),
    path("accounts", accounts.AccountListView.as_view(), name="accounts"),
    path("accounts/<uuid:account_uuid>", accounts.AccountDetailView.as_view(), name="account"),
    path(
        "accounts/<uuid:account_uuid>/deposit",
        accounts.DepositView.as_view(),
        name="account-deposit",
    ),
    path(
        "accounts/<uuid:account_uuid>/withdraw",
        accounts.WithdrawView.as_view(),
        name="account-withdraw",
    ),
    # Deposits and withdrawals through a custodian (started at .../deposit and .../withdraw).
    path(
        "accounts/<uuid:account_uuid>/deposits",
        custodians.AccountDepositsView.as_view(),
        name="account-deposits",
    ),
    path(
        "accounts/<uuid:account_uuid>/withdrawals",
        custodians.AccountWithdrawalsView.as_view(),
        name="account-withdrawals",
    ),
    path("deposits/<uuid:movement_uuid>", custodians.DepositDetailView.as_view(), name="deposit"),
    path(
        "withdrawals/<uuid:movement_uuid>",
        custodians.WithdrawalDetailView.as_view(),
        name="withdrawal",
    ),
    path(
        "accounts/<uuid:account_uuid>/adjustments",
        accounts.AdjustmentView.as_view(),
        name="account-adjustments",
    ),
    path(
        "accounts/<uuid:account_uuid>/freeze", accounts.FreezeView.as_view(), name="account-freeze"
    ),
    path(
        "accounts/<uuid:account_uuid>/unfreeze",
        accounts.UnfreezeView.as_view(),
        name="account-unfreeze",
    ),
    path(
        "accounts/<uuid:account_uuid>/balances",
        accounts.BalancesView.as_view(),
        name="account-balances",
    ),
    path(
        "accounts/<uuid:account_uuid>/transactions",
        accounts.TransactionsView.as_view(),
        name="account-transactions",
    ),
    path(
        "accounts/<uuid:account_uuid>/turnover",
        accounts.TurnoverView.as_view(),
        name="account-turnover",
    ),
    path(
        "accounts/<uuid:account_uuid>/transfers",
        accounts.AccountTransfersView.as_view(),
        name="account-transfers",
    ),
    path("transfers", payments.TransferListView.as_view(), name="transfers"),
    path("transfers/bulk", payments.BulkTransferView.as_view(), name="transfers-bulk"),
    path("transfers/<uuid:transfer_uuid>", payments.TransferDetailView.as_view(), name="transfer"),
    path(
        "transfers/<uuid:transfer_uuid>/reverse",
        payments.TransferReverseView.as_view(),
        name="transfer-reverse",
    ),
    path("exchange/convert", payments.ConvertView.as_view(), name="exchange-convert"),
    path("assets", assets.AssetListView.as_view(), name="assets"),
    path("assets/<str:code>", assets.AssetDetailView.as_view(), name="asset"),
    path("exchange-rates", assets.ExchangeRateListView.as_view(), name="exchange-rates"),
    path(
        "exchange-rates/<str:from_code>/<str:to_code>",
        assets.ExchangeRateDetailView.as_view(),
        name="exchange-rate",
    ),
    path(
        "exchange-rates/<str:from_code>/<str:to_code>/convert",
        assets.ExchangeRateConvertView.as_view(),
        name="exchange-rate-convert",
    ),
    # --- custodians ---
    path("custodians", custodians.CustodianListView.as_view(), name="custodians"),
    path(
        "webhooks/custodians/<str:code>",
        custodians.CustodianWebhookView.as_view(),
        name="custodian-webhook",
    ),
    # --- governance ---
    path("polls", governance.PollListView.as_view(), name="polls"),
    path("polls/active", governance.ActivePollListView.as_view(), name="polls-active"),
    path("polls/<uuid:poll_uuid>", governance.PollDetailView.as_view(), name="poll"),
    path(
        "polls/<uuid:poll_uuid>/activate",
        governance.PollActivateView.as_view(),
        name="poll-activate",
    ),
    path("polls/<uuid:poll_uuid>/vote", governance.PollVoteView.as_view(), name="poll-vote"),
    path(
        "polls/<uuid:poll_uuid>/results",
        governance.PollResultsView.as_view(),
        name="poll-results",
    ),
    path(
        "polls/<uuid:poll_uuid>/voting-power",
        governance.PollVotingPowerView.as_view(),
        name="poll-voting-power",
    ),
    # --- baskets and bank allocation ---
    path("baskets", baskets.BasketListView.as_view(), name="baskets"),
    path("baskets/<str:basket_code>", baskets.BasketDetailView.as_view(), name="basket"),
    path("baskets/<str:basket_code>/value", baskets.BasketValueView.as_view(), name="basket-value"),
    path(
        "baskets/<str:basket_code>/history",
        baskets.BasketHistoryView.as_view(),
        name="basket-history",
    ),
    path(
        "baskets/<str:basket_code>/rebalance",
        baskets.BasketRebalanceView.as_view(),
        name="basket-rebalance",
    ),
    path(
        "accounts/<uuid:account_uuid>/baskets/compose",
        baskets.ComposeView.as_view(),
        name="account-basket-compose",
    ),
    path(
        "accounts/<uuid:account_uuid>/baskets/decompose",
        baskets.DecomposeView.as_view(),
        name="account-basket-decompose",
    ),
    path("bank-allocations", baskets.BankAllocationView.as_view(), name="bank-allocations"),
    path(
        "bank-allocations/distribution-preview",
        baskets.DistributionPreviewView.as_view(),
        name="bank-allocations-preview",
    ),
]
