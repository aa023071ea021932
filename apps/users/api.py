"""Auth endpoints: register, login, logout, me, tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import ErrorSerializer
from apps.users.models import ApiToken
from apps.users.services import ALL_SCOPES, token_create, token_revoke, user_login, user_register


class UserSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True)
    name = serializers.CharField(max_length=150)


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True)


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The secret; shown only now.")
    expires_at = serializers.DateTimeField()


class RegisteredSerializer(IssuedTokenSerializer):
    user = UserSerializer()


class TokenSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), required=False, allow_empty=False
    )
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, min_value=1, max_value=3650
    )
    prefix = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NewTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only now.")


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 429: ErrorSerializer}


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "auth"

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer, **ERRORS})
    def post(self, request):
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, issued = user_register(**data.validated_data)
        body = {
            "user": UserSerializer(user).data,
            "token": issued.secret,
            "expires_at": issued.expires_at,
        }
        return Response(RegisteredSerializer(body).data, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "auth"

    @extend_schema(request=LoginSerializer, responses={200: IssuedTokenSerializer, **ERRORS})
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = user_login(**data.validated_data, request=request)
        body = {"token": issued.secret, "expires_at": issued.expires_at}
        return Response(IssuedTokenSerializer(body).data)


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]
    required_scopes = {"POST": None}  # any token may give itself up

    @extend_schema(
        request=None,
        responses={204: None, **ERRORS},
        description="Revokes the token used. Needs no scope.",
    )
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            token_revoke(user=request.user, token_uuid=request.auth.uuid)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: UserSerializer, **ERRORS})
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class TokenListView(APIView):
    required_scopes = {"GET": "read", "POST": "tokens"}

    @extend_schema(responses={200: TokenSerializer(many=True), **ERRORS})
    def get(self, request):
        tokens = ApiToken.objects.filter(user=request.user, revoked_at=None)
        return Response(TokenSerializer(tokens, many=True).data)

    @extend_schema(
        request=TokenSerializer,
        responses={201: NewTokenSerializer, 403: ErrorSerializer, **ERRORS},
        description=(
            "Needs the `tokens` scope (login and registration tokens have every scope). The new "
            "token gets at most the scopes of the token used (by default exactly them; asking "
            "for more is 403 PERMISSION_DENIED) and expires no later than it: a longer "
            "`expires_in_days` is capped, `expires_at` says when it ends."
        ),
    )
    def post(self, request):
        data = TokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = token_create(
            user=request.user,
            name=data.validated_data["name"],
            scopes=data.validated_data.get("scopes"),
            ttl_days=data.validated_data.get("expires_in_days"),
            created_by=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        body = {**TokenSerializer(issued.token).data, "token": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    required_scopes = {"DELETE": "tokens"}

    @extend_schema(
        responses={204: None, 403: ErrorSerializer, 404: ErrorSerializer, **ERRORS},
        description="Revokes one of the caller's tokens. Needs the `tokens` scope.",
    )
    def delete(self, request, token_id):
        token_revoke(user=request.user, token_uuid=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
