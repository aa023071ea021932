"""The registry: which connector class serves which custodian, built from settings.

`settings.CUSTODIAN_CONNECTORS` maps each code of `settings.CUSTODIANS` to
`{"class": "<dotted path>", "name": ..., "options": {...}, "webhook_secret": ...}`. Connectors
are built once per process (a mock bank's seeded random generator must keep its sequence) and
handed out wrapped in the retries and the circuit breaker.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from apps.custodians.connectors import CustodianConnector, UnknownCustodian
from apps.custodians.resilience import (
    BreakerSettings,
    CircuitBreaker,
    ResilientConnector,
    RetryPolicy,
)

_connectors: dict[str, ResilientConnector] = {}
_lock = threading.Lock()


def custodian_codes() -> list[str]:
    return list(settings.CUSTODIANS)


def custodian_config(code: str) -> dict[str, Any]:
    if code not in settings.CUSTODIANS or code not in settings.CUSTODIAN_CONNECTORS:
        raise UnknownCustodian(details={"custodian": code})
    return settings.CUSTODIAN_CONNECTORS[code]


def breaker_for(code: str) -> CircuitBreaker:
    return CircuitBreaker(code, BreakerSettings(**settings.CUSTODIAN_CIRCUIT_BREAKER))


def _build(code: str) -> ResilientConnector:
    config = custodian_config(code)
    inner: CustodianConnector = import_string(config["class"])(
        code=code, name=config.get("name", code), **config.get("options", {})
    )
    return ResilientConnector(
        inner, breaker=breaker_for(code), policy=RetryPolicy(**settings.CUSTODIAN_RETRY)
    )


def connector_for(code: str | None = None) -> ResilientConnector:
    """The connector of `code` (default: DEFAULT_CUSTODIAN), behind retries and the breaker."""
    code = code or settings.DEFAULT_CUSTODIAN
    with _lock:
        if code not in _connectors:
            _connectors[code] = _build(code)
        return _connectors[code]


def reset() -> None:
    """Forget the built connectors (after the settings changed)."""
    with _lock:
        _connectors.clear()


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    # Tests change the connectors' options with override_settings; rebuild them then.
    if setting.startswith("CUSTODIAN"):
        reset()
