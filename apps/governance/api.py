"""Governance API: polls, votes, results and voting power (API.md, "Governance")."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import ErrorSerializer, StandardPagination, idempotent_response, page_of
from apps.governance.aggregates import POLL_TYPES, STRATEGIES, WEIGHTED_CHOICE
from apps.governance.models import Poll
from apps.governance.selectors import (
    poll_active_list,
    poll_get,
    poll_list,
    poll_results_get,
    vote_of,
    voting_power_shown,
)
from apps.governance.services import poll_activate, poll_create, vote_cast

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 422, 429)}
VIEW_DRAFTS = "governance.view_poll"
MANAGE = "governance.manage_poll"


def poll_for(request, poll_uuid) -> Poll:
    """The poll if the caller may see it: drafts only for staff (else 404, like a poll that
    does not exist)."""
    return poll_get(poll_uuid, include_drafts=request.user.has_perm(VIEW_DRAFTS))


def _require_manager(request) -> None:
    if not request.user.has_perm(MANAGE):
        raise PermissionDenied("Only staff may manage polls.")


# --- serializers ---------------------------------------------------------------------------------


class PercentField(serializers.DecimalField):
    """A JSON number or decimal string, kept exact; the rules (0-100, two decimals) are the
    service's, which refuses a bad ballot with INVALID_OPTIONS."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=None, decimal_places=None, **kwargs)


class PollOptionSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=50)
    label = serializers.CharField(max_length=200)
    min_weight = serializers.CharField(required=False, help_text="weighted polls: percent")
    max_weight = serializers.CharField(required=False, help_text="weighted polls: percent")
    default_weight = serializers.CharField(required=False, help_text="weighted polls: percent")


class PollOptionInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=50)
    label = serializers.CharField(max_length=200)
    min_weight = PercentField(required=False, help_text="weighted polls: percent, default 0")
    max_weight = PercentField(required=False, help_text="weighted polls: percent, default 100")
    default_weight = PercentField(required=False, help_text="weighted polls: percent")


class PollSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    title = serializers.CharField()
    description = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    options = PollOptionSerializer(many=True)
    max_choices = serializers.IntegerField(allow_null=True)
    start_date = serializers.DateTimeField()
    end_date = serializers.DateTimeField()
    voting_power_strategy = serializers.CharField()
    required_participation = serializers.DecimalField(
        max_digits=5, decimal_places=2, allow_null=True, help_text="percent of eligible power"
    )
    execution_workflow = serializers.SerializerMethodField()
    metadata = serializers.DictField()
    votes_count = serializers.IntegerField()
    total_power = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)

    def get_execution_workflow(self, poll: Poll) -> str | None:
        return poll.execution_workflow or None


class PollCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=POLL_TYPES)
    options = PollOptionInputSerializer(many=True, min_length=2, max_length=50)
    start_date = serializers.DateTimeField()
    end_date = serializers.DateTimeField()
    voting_power_strategy = serializers.ChoiceField(choices=STRATEGIES)
    required_participation = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal(100),
        required=False,
        allow_null=True,
    )
    execution_workflow = serializers.CharField(max_length=60, required=False, allow_null=True)
    max_choices = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="multiple_choice: at most N"
    )
    metadata = serializers.DictField(required=False)


class PollQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Poll.Status.values, required=False)
    type = serializers.ChoiceField(choices=Poll.Type.values, required=False)


class BallotSerializer(serializers.Serializer):
    selected_options = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=50
    )
    allocations = serializers.DictField(
        child=PercentField(), required=False, help_text="weighted polls: option id -> percent"
    )

    def validate(self, data):
        if not data.get("selected_options") and not data.get("allocations"):
            raise serializers.ValidationError("give selected_options, or allocations")
        return data


class VoteSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    poll_uuid = serializers.UUIDField(source="poll_id")
    selected_options = serializers.ListField(child=serializers.CharField())
    allocations = serializers.DictField(child=serializers.CharField())
    voting_power = serializers.IntegerField()
    strategy = serializers.CharField()
    signature = serializers.CharField(help_text="HMAC over poll, user, options, power and time")
    voted_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class ResultsSerializer(serializers.Serializer):
    poll_uuid = serializers.UUIDField()
    status = serializers.CharField()
    totals = serializers.DictField(
        help_text="option -> power: an integer, a decimal string in weighted polls"
    )
    total_power = serializers.IntegerField()
    votes_count = serializers.IntegerField()
    eligible_power = serializers.IntegerField()
    participation = serializers.CharField(help_text="percent of the eligible power cast")
    required_participation = serializers.CharField(allow_null=True)
    participation_met = serializers.BooleanField()
    winner = serializers.CharField(allow_null=True)


class VotingPowerSerializer(serializers.Serializer):
    voting_power = serializers.IntegerField()
    strategy = serializers.CharField()
    has_voted = serializers.BooleanField()


def results_body(poll: Poll) -> dict:
    results = poll_results_get(poll)
    totals = results["totals"]
    if poll.type != WEIGHTED_CHOICE:
        totals = {option: int(Decimal(value)) for option, value in totals.items()}
    return {
        "poll_uuid": poll.uuid,
        "status": poll.status,
        "totals": totals,
        **{
            key: results[key]
            for key in (
                "total_power",
                "votes_count",
                "eligible_power",
                "participation",
                "required_participation",
                "participation_met",
                "winner",
            )
        },
    }


# --- views ---------------------------------------------------------------------------------------


class PollListView(APIView):
    required_scopes = {"GET": "read", "POST": "vote"}

    @extend_schema(
        parameters=[PollQuerySerializer],
        responses={200: page_of(PollSerializer)},
        operation_id="v1_polls_list",
    )
    def get(self, request):
        query = PollQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        polls = poll_list(
            include_drafts=request.user.has_perm(VIEW_DRAFTS),
            status=query.validated_data.get("status"),
            type=query.validated_data.get("type"),
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(polls, request, view=self)
        return paginator.get_paginated_response(PollSerializer(page, many=True).data)

    @extend_schema(
        request=PollCreateSerializer,
        responses={201: PollSerializer, **ERRORS},
        description="Staff: create a poll as a draft.",
    )
    def post(self, request):
        _require_manager(request)
        data = PollCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        poll = poll_create(**data.validated_data)
        return Response(PollSerializer(poll).data, status=status.HTTP_201_CREATED)


class ActivePollListView(APIView):
    @extend_schema(responses={200: page_of(PollSerializer)}, operation_id="v1_polls_active_list")
    def get(self, request):
        paginator = StandardPagination()
        page = paginator.paginate_queryset(poll_active_list(), request, view=self)
        return paginator.get_paginated_response(PollSerializer(page, many=True).data)


class PollDetailView(APIView):
    @extend_schema(responses={200: PollSerializer, **ERRORS})
    def get(self, request, poll_uuid):
        return Response(PollSerializer(poll_for(request, poll_uuid)).data)


class PollActivateView(APIView):
    required_scopes = {"POST": "vote"}

    @extend_schema(request=None, responses={200: PollSerializer, **ERRORS})
    def post(self, request, poll_uuid):
        poll_for(request, poll_uuid)
        _require_manager(request)
        return Response(PollSerializer(poll_activate(poll_uuid=poll_uuid)).data)


class PollVoteView(APIView):
    required_scopes = {"POST": "vote"}

    @extend_schema(
        request=BallotSerializer,
        responses={201: VoteSerializer, **ERRORS},
        description="Cast the caller's one vote with the voting power fixed when the poll was "
        "activated. Accepts an Idempotency-Key.",
    )
    def post(self, request, poll_uuid):
        poll_for(request, poll_uuid)
        data = BallotSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def vote():
            cast = vote_cast(poll_uuid=poll_uuid, user=request.user, **data.validated_data)
            return status.HTTP_201_CREATED, VoteSerializer(cast).data

        return idempotent_response(request, vote)


class PollResultsView(APIView):
    @extend_schema(responses={200: ResultsSerializer, **ERRORS})
    def get(self, request, poll_uuid):
        poll = poll_for(request, poll_uuid)
        return Response(ResultsSerializer(results_body(poll)).data)


class PollVotingPowerView(APIView):
    @extend_schema(
        responses={200: VotingPowerSerializer, **ERRORS},
        description="The caller's power in this poll: the power fixed when the poll was "
        "activated (the vote's, once cast); for a draft, what activating it now would give.",
    )
    def get(self, request, poll_uuid):
        poll = poll_for(request, poll_uuid)
        body = {
            "voting_power": voting_power_shown(poll, request.user),
            "strategy": poll.voting_power_strategy,
            "has_voted": vote_of(poll.uuid, request.user.uuid) is not None,
        }
        return Response(VotingPowerSerializer(body).data)
