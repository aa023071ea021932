"""The per-aggregate hash chain that makes tampering with stored events evident."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from functools import cache
from typing import Any

from django.conf import settings

GENESIS_HASH = ""


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@cache
def _key(raw_key: str) -> bytes:
    return raw_key.encode()


def chain_hash(
    previous_hash: str,
    aggregate_uuid: uuid.UUID,
    version: int,
    event_type: str,
    data: dict[str, Any],
    *,
    event_version: int,
    meta: dict[str, Any],
) -> str:
    """The event's link: HMAC-SHA3-512 keyed with EVENT_HASH_KEY over the previous link and the
    canonical JSON of the aggregate uuid, version, event type and data.

    The schema version and the meta_data (who did it, in which request) are covered too: an
    audit trail whose actor could be edited unnoticed would prove nothing.
    """
    body = canonical_json(
        {
            "uuid": str(aggregate_uuid),
            "version": version,
            "type": event_type,
            "data": data,
            "event_version": event_version,
            "meta": meta,
        }
    )
    key = _key(settings.EVENT_HASH_KEY)
    return hmac.new(key, previous_hash.encode() + body, hashlib.sha3_512).hexdigest()
