"""The HMAC signature of a vote, which staff can verify.

The key is the GOVERNANCE_VOTE_SIGNING_KEY setting, or, when that is empty, a key derived from
EVENT_HASH_KEY under its own label: a vote signature can never be confused with an event hash,
and production (which must set EVENT_HASH_KEY) gets a secret key without another variable.
Changing either key makes the existing signatures fail verification.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Mapping

from django.conf import settings

from apps.core.hashing import canonical_json

KEY_LABEL = b"finaegis/governance/vote-signature/v1"


def _key() -> bytes:
    configured = settings.GOVERNANCE_VOTE_SIGNING_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.EVENT_HASH_KEY.encode(), KEY_LABEL, hashlib.sha256).digest()


def vote_signature(
    *,
    poll_uuid: uuid.UUID,
    user_uuid: uuid.UUID,
    selected_options: tuple[str, ...] | list[str],
    allocations: Mapping[str, str],
    voting_power: int,
    voted_at: dt.datetime,
) -> str:
    """HMAC-SHA256 (hex) over the canonical JSON of poll, user, options, power and time (UTC)."""
    body = canonical_json(
        {
            "poll": str(poll_uuid),
            "user": str(user_uuid),
            "selected_options": list(selected_options),
            "allocations": dict(allocations),
            "voting_power": voting_power,
            "voted_at": voted_at.astimezone(dt.UTC).isoformat(),
        }
    )
    return hmac.new(_key(), body, hashlib.sha256).hexdigest()


def signature_matches(signature: str, **fields) -> bool:
    return hmac.compare_digest(signature, vote_signature(**fields))
