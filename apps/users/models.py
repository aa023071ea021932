"""The custom user: email login and a public uuid."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("a user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username: str) -> User:
        # Emails are stored lower-case, so logging in is case-insensitive.
        return self.get(email=username.lower())


class User(AbstractBaseUser, PermissionsMixin):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Staff members can log into the operator console."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email

    def save(self, *args, **kwargs) -> None:
        # `_password` is set by set_password() and left unset by a hash upgrade at login, so
        # it means exactly "the password changed": every token issued before is revoked.
        password_changed = self._password is not None and self.pk is not None
        super().save(*args, **kwargs)
        if password_changed:
            self.api_tokens.filter(revoked_at=None).update(revoked_at=timezone.now())

    def has_perm(self, perm, obj=None) -> bool:
        # Model permissions come from the staff roles (groups). They act only while the user is
        # staff, so un-ticking "staff" withdraws them at once from every session and API token
        # (read on each request), even before anyone removes the groups. An owner's object
        # permissions on his own accounts (`obj` given) are not staff powers and stay.
        if obj is None and not self.is_staff:
            return False
        return super().has_perm(perm, obj)


class ApiToken(models.Model):
    """A bearer token. Only the SHA-256 of its secret is stored; the secret is shown once."""

    class Scope(models.TextChoices):
        READ = "read", "Read accounts, transfers and rates"
        TRANSFER = "transfer", "Move money: deposits, withdrawals, transfers, conversions"
        ACCOUNTS = "accounts", "Open and close accounts"
        VOTE = "vote", "Vote in polls"
        TOKENS = "tokens", "Create and revoke API tokens (no broader or longer-lived than itself)"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell it")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="users_token_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    def is_usable(self, now) -> bool:
        return self.revoked_at is None and self.expires_at > now and self.user.is_active
