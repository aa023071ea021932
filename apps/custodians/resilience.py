"""What stands around every connector: retries with backoff and jitter, and a circuit breaker.

A call goes: breaker (is the custodian known to be failing? then do not call) -> connector ->
the outcome recorded on the breaker -> on a transient failure, wait and try again, a bounded
number of times. The breaker's state lives in the database (`CircuitBreakerState`), so every
process sees the same failures and stops calling a failing custodian together.

The breaker: closed, it counts failures; it opens after `failure_threshold` consecutive failures
or when `failure_rate` of the last `window` calls failed (a full window only). Open, it refuses
calls for `open_seconds`, then lets calls through half-open: `close_after` successes close it,
one failure opens it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from apps.custodians.connectors import (
    AccountInfo,
    Balance,
    CircuitOpen,
    CustodianConnector,
    CustodianError,
    CustodianRejected,
    CustodianTransaction,
    CustodianTransientError,
    CustodianUnavailable,
    TransferRequest,
)
from apps.custodians.models import CircuitBreakerState

logger = logging.getLogger(__name__)
T = TypeVar("T")

CLOSED = CircuitBreakerState.State.CLOSED
OPEN = CircuitBreakerState.State.OPEN
HALF_OPEN = CircuitBreakerState.State.HALF_OPEN


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2  # seconds before the second attempt
    max_delay: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): exponential, capped, with
        equal jitter (half fixed, half random) so many callers do not retry in lockstep."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_call(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    describe: str = "call",
) -> T:
    """Call, retrying transient custodian failures; an open circuit is not retried (waiting a
    second will not close it), and a rejection or any other error is raised at once."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return call()
        except CircuitOpen:
            raise
        except CustodianTransientError as exc:
            if attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, rng)
            logger.info("%s failed (%s); attempt %d in %.3f s", describe, exc, attempt + 1, wait)
            sleep(wait)
            attempt += 1


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5
    window: int = 10
    failure_rate: float = 0.5
    open_seconds: int = 60
    close_after: int = 2


def _clock() -> dt.datetime:
    return timezone.now()


class CircuitBreaker:
    def __init__(
        self,
        code: str,
        config: BreakerSettings | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.code = code
        self.config = config or BreakerSettings()
        self._clock = clock

    def _now(self) -> dt.datetime:
        return self._clock() if self._clock is not None else _clock()

    def _locked(self) -> CircuitBreakerState:
        CircuitBreakerState.objects.get_or_create(custodian=self.code)
        return CircuitBreakerState.objects.select_for_update().get(custodian=self.code)

    def state(self) -> CircuitBreakerState:
        state, _ = CircuitBreakerState.objects.get_or_create(custodian=self.code)
        return state

    def before_call(self) -> None:
        """Raise CircuitOpen while the breaker is open; after `open_seconds`, go half-open."""
        current = self.state()
        if current.state != OPEN:
            return
        now = self._now()
        reopen_at = current.opened_at + dt.timedelta(seconds=self.config.open_seconds)
        if now < reopen_at:
            raise CircuitOpen(
                retry_at=reopen_at,
                details={"custodian": self.code, "retry_after": reopen_at.isoformat()},
            )
        with transaction.atomic():
            state = self._locked()
            if state.state == OPEN:
                state.state, state.half_open_successes, state.updated_at = HALF_OPEN, 0, now
                state.save()
                logger.warning("custodian %s: circuit half-open, trying again", self.code)

    def record_success(self) -> None:
        with transaction.atomic():
            state = self._locked()
            state.updated_at = self._now()
            if state.state == HALF_OPEN:
                state.half_open_successes += 1
                if state.half_open_successes >= self.config.close_after:
                    self._close(state)
            else:
                state.consecutive_failures = 0
                state.recent_outcomes = (state.recent_outcomes + "1")[-self.config.window :]
            state.save()

    def record_failure(self, error: BaseException) -> None:
        with transaction.atomic():
            state = self._locked()
            now = self._now()
            state.updated_at = state.last_failure_at = now
            state.last_failure = f"{type(error).__name__}: {error}"[:500]
            if state.state == HALF_OPEN:
                self._open(state, now, "a trial call failed while half-open")
            else:
                state.consecutive_failures += 1
                state.recent_outcomes = (state.recent_outcomes + "0")[-self.config.window :]
                if state.state == CLOSED and self._should_open(state):
                    self._open(state, now, f"{state.consecutive_failures} consecutive failures")
            state.save()

    def reset(self) -> None:
        with transaction.atomic():
            state = self._locked()
            self._close(state)
            state.updated_at = self._now()
            state.save()

    def _should_open(self, state: CircuitBreakerState) -> bool:
        if state.consecutive_failures >= self.config.failure_threshold:
            return True
        outcomes = state.recent_outcomes
        if len(outcomes) < self.config.window:
            return False
        return outcomes.count("0") / len(outcomes) >= self.config.failure_rate

    def _open(self, state: CircuitBreakerState, now: dt.datetime, why: str) -> None:
        state.state, state.opened_at, state.half_open_successes = OPEN, now, 0
        logger.error("custodian %s: circuit opened (%s)", self.code, why)

    def _close(self, state: CircuitBreakerState) -> None:
        state.state = CLOSED
        state.consecutive_failures = state.half_open_successes = 0
        state.recent_outcomes = ""
        state.opened_at = None
        logger.warning("custodian %s: circuit closed", self.code)


class ResilientConnector:
    """A connector behind the breaker and the retries; the same protocol as what it wraps."""

    def __init__(
        self,
        inner: CustodianConnector,
        *,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.inner = inner
        self.breaker = breaker
        self.policy = policy
        self.code = inner.code
        self.settlement_account = inner.settlement_account
        self._sleep = sleep
        self._rng = rng or random.Random()

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        def once() -> Any:
            self.breaker.before_call()
            try:
                result = getattr(self.inner, operation)(*args, **kwargs)
            except CustodianRejected:
                self.breaker.record_success()  # it answered: the custodian itself is healthy
                raise
            except CustodianError as exc:
                self.breaker.record_failure(exc)
                raise
            except Exception as exc:
                # A connector's own network error: unavailable, as far as the caller can tell.
                self.breaker.record_failure(exc)
                raise CustodianUnavailable(f"{self.code}: {operation}: {exc}") from exc
            self.breaker.record_success()
            return result

        return retry_call(
            once, self.policy, sleep=self._sleep, rng=self._rng, describe=f"{self.code} {operation}"
        )

    def get_balance(self, account_id: str, asset_code: str) -> Balance:
        return self._call("get_balance", account_id, asset_code)

    def get_account_info(self, account_id: str) -> AccountInfo:
        return self._call("get_account_info", account_id)

    def initiate_transfer(self, request: TransferRequest) -> CustodianTransaction:
        return self._call("initiate_transfer", request)

    def get_transaction_status(self, transaction_id: str) -> CustodianTransaction:
        return self._call("get_transaction_status", transaction_id)

    def cancel_transaction(self, transaction_id: str) -> CustodianTransaction:
        return self._call("cancel_transaction", transaction_id)

    def get_supported_assets(self) -> list[str]:
        return self._call("get_supported_assets")

    def validate_account(self, account_id: str) -> bool:
        return self._call("validate_account", account_id)

    def get_transaction_history(
        self, account_id: str, *, since: dt.datetime | None = None, limit: int = 100
    ) -> list[CustodianTransaction]:
        return self._call("get_transaction_history", account_id, since=since, limit=limit)
