"""The idempotency store: one key, one effect, the same answer every time.

`run_idempotent` claims (scope, key) by inserting a row inside the command's transaction. A second
request with the same key blocks on the unique index until the first commits, then finds the
stored response and returns it; so two identical requests at the same moment move money once.
Business-rule refusals are stored and replayed too, as API.md asks ("the first response again").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import sql, store
from apps.core.errors import DomainError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidInput
from apps.core.hashing import canonical_json
from apps.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool


class ReplayedDomainError(DomainError):
    """A stored refusal raised again for a service-level caller; keeps the original code."""

    def __init__(self, body: dict[str, Any], status_code: int):
        super().__init__(body.get("message"), details=body.get("details"))
        self.code = body["error"]
        self.http_status = status_code


def request_fingerprint(payload: Any) -> str:
    try:
        encoded = canonical_json(payload)
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8; its escaped form still tells one body from another.
        # (The API's parser refuses such text; a caller in process may not have.)
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")
    return hashlib.sha256(encoded).hexdigest()


def _claim(scope: str, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the key's row, or return the row someone else already committed.

    One INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL it waits for a concurrent insert of the
    same key to commit or roll back before it decides, and needs no savepoint to fail in.
    """
    now = timezone.now()
    record = IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        created_at=now,
        expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
    )
    names = ("scope", "key", "fingerprint", "created_at", "expires_at")
    unique = f"{sql.column(IdempotencyRecord, 'scope')}, {sql.column(IdempotencyRecord, 'key')}"
    ids = sql.insert_rows(
        IdempotencyRecord,
        names,
        [[getattr(record, name) for name in names]],
        on_conflict=f"ON CONFLICT ({unique}) DO NOTHING",
        returning="id",
    )
    if ids:
        record.pk = ids[0]
        return record, True
    existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if existing is not None and existing.expires_at > now:
        return existing, False
    if existing is not None:
        existing.delete()  # an expired key is free again
    return _claim(scope, key, fingerprint)  # (or another request just freed it)


@store.command
def run_idempotent(
    *,
    scope: str,
    key: str,
    fingerprint: str,
    handler: Callable[[], tuple[int, dict[str, Any]]],
) -> IdempotentResult:
    """Run `handler` once per (scope, key); later calls get its stored status and body."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            details={"Idempotency-Key": [f"must be 1 to {MAX_KEY_LENGTH} characters"]}
        )
    record, claimed = _claim(scope, key, fingerprint)
    if not claimed:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(details={"key": key})
        if record.status_code is None:
            raise IdempotencyKeyInFlight(details={"key": key})
        return IdempotentResult(record.status_code, record.response, replayed=True)
    try:
        with transaction.atomic():
            status_code, body = handler()
    except DomainError as exc:
        status_code, body = exc.http_status, exc.as_dict()
    sql.update_each(
        IdempotencyRecord, ["status_code", "response"], ["id"], [[status_code, body, record.pk]]
    )
    return IdempotentResult(status_code, body, replayed=False)


def purge_expired_keys() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
