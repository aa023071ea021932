"""Retries with exponential backoff and jitter; the circuit breaker's transitions on a clock."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from apps.custodians.connectors import (
    CircuitOpen,
    CustodianRejected,
    CustodianTimeout,
    CustodianUnavailable,
)
from apps.custodians.mock_bank import MockBank
from apps.custodians.models import CircuitBreakerState
from apps.custodians.registry import connector_for
from apps.custodians.resilience import (
    BreakerSettings,
    CircuitBreaker,
    ResilientConnector,
    RetryPolicy,
    retry_call,
)
from apps.custodians.services import circuit_breaker_reset

pytestmark = pytest.mark.django_db


class Flaky:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


class ManualClock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += dt.timedelta(seconds=seconds)


# --- retries --------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_half_of_each_wait_random():
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=8.0)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)]:
        waits = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len({round(w, 6) for w in waits}) > 100  # jittered, not one fixed value
    assert policy.delay(3, random.Random(9)) == policy.delay(3, random.Random(9))


def test_transient_failures_are_retried_until_the_call_answers():
    slept = []
    call = Flaky(CustodianUnavailable(), CustodianTimeout())
    policy = RetryPolicy(attempts=3, base_delay=0.2, max_delay=2.0)
    assert retry_call(call, policy, sleep=slept.append, rng=random.Random(1)) == "answer"
    assert call.calls == 3
    assert 0.1 <= slept[0] <= 0.2 and 0.2 <= slept[1] <= 0.4


def test_retries_stop_after_the_last_attempt_and_never_retry_refusals_or_open_circuits():
    slept = []
    policy = RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0)
    always_down = Flaky(*[CustodianUnavailable()] * 5)
    with pytest.raises(CustodianUnavailable):
        retry_call(always_down, policy, sleep=slept.append)
    assert always_down.calls == 3 and len(slept) == 2
    for error in (CustodianRejected(), CircuitOpen(), ValueError("bug")):
        call = Flaky(error)
        with pytest.raises(type(error)):
            retry_call(call, policy, sleep=slept.append)
        assert call.calls == 1


# --- the circuit breaker --------------------------------------------------------------------


@pytest.fixture
def manual_clock():
    return ManualClock()


@pytest.fixture
def breaker(db, manual_clock):
    return CircuitBreaker("mock_bank", BreakerSettings(), clock=manual_clock)


def fail(breaker, times=1):
    for _ in range(times):
        breaker.record_failure(CustodianUnavailable("down"))


def succeed(breaker, times=1):
    for _ in range(times):
        breaker.record_success()


def test_five_consecutive_failures_open_the_circuit(breaker):
    fail(breaker, 4)
    assert breaker.state().state == "closed"
    breaker.before_call()
    fail(breaker)
    state = breaker.state()
    assert state.state == "open" and state.consecutive_failures == 5
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.details["custodian"] == "mock_bank"


def test_a_success_restarts_the_count_of_consecutive_failures(breaker):
    fail(breaker, 4)
    succeed(breaker)
    fail(breaker, 4)
    assert breaker.state().state == "closed"


def test_half_of_the_last_ten_calls_failing_opens_the_circuit(breaker):
    for _ in range(4):  # F S F S ... never 5 in a row
        fail(breaker)
        succeed(breaker)
    fail(breaker)
    assert breaker.state().state == "closed"  # 5 failures, but only 9 calls yet
    succeed(breaker)
    assert breaker.state().state == "closed"  # 5 of 10, but a success never opens it
    fail(breaker)  # window now: S F S F S F S F S F -> 5 of 10 failed
    assert breaker.state().state == "open"


def test_fewer_than_half_failing_keeps_it_closed(breaker):
    for _ in range(10):
        succeed(breaker, 2)
        fail(breaker)
    state = breaker.state()
    assert state.state == "closed" and state.recent_outcomes.count("0") < 5


def test_open_turns_half_open_after_sixty_seconds_and_two_successes_close_it(breaker, manual_clock):
    fail(breaker, 5)
    manual_clock.advance(59)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    manual_clock.advance(1)
    breaker.before_call()  # lets a trial call through
    assert breaker.state().state == "half_open"
    succeed(breaker)
    assert breaker.state().state == "half_open"
    succeed(breaker)
    state = breaker.state()
    assert (state.state, state.consecutive_failures, state.recent_outcomes) == ("closed", 0, "")


def test_a_failure_while_half_open_opens_it_again_for_another_minute(breaker, manual_clock):
    fail(breaker, 5)
    manual_clock.advance(60)
    breaker.before_call()
    succeed(breaker)
    fail(breaker)
    state = breaker.state()
    assert state.state == "open" and state.opened_at == manual_clock.now
    manual_clock.advance(30)
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_the_state_is_shared_by_every_breaker_of_the_custodian(breaker, manual_clock):
    fail(breaker, 5)
    other_process = CircuitBreaker("mock_bank", clock=manual_clock)
    with pytest.raises(CircuitOpen):
        other_process.before_call()
    assert CircuitBreakerState.objects.get(custodian="mock_bank").state == "open"


def test_staff_can_reset_an_open_circuit(bank, breaker):
    fail(breaker, 5)
    circuit_breaker_reset(code="mock_bank")
    assert breaker.state().state == "closed"
    breaker.before_call()


# --- both around a connector ----------------------------------------------------------------


def resilient(bank: MockBank, clock, attempts=3) -> ResilientConnector:
    return ResilientConnector(
        bank,
        breaker=CircuitBreaker(bank.code, clock=clock),
        policy=RetryPolicy(attempts=attempts, base_delay=0.0, max_delay=0.0),
        sleep=lambda seconds: None,
    )


def test_a_failing_custodian_opens_the_circuit_and_is_then_not_called_at_all(db, manual_clock):
    bank = MockBank(code="mock_bank", fail_operations=["get_supported_assets"])
    connector = resilient(bank, manual_clock, attempts=3)
    with pytest.raises(CustodianUnavailable):
        connector.get_supported_assets()  # 3 attempts, 3 failures
    with pytest.raises(CircuitOpen):
        connector.get_supported_assets()  # attempts 4 and 5 fail and open it; no 6th
    assert CircuitBreakerState.objects.get(custodian="mock_bank").consecutive_failures == 5
    bank.fail_operations = frozenset()
    with pytest.raises(CircuitOpen):
        connector.get_supported_assets()
    manual_clock.advance(60)
    assert connector.get_supported_assets()  # half-open trial
    assert connector.get_supported_assets()
    assert connector.breaker.state().state == "closed"


def test_a_refusal_is_an_answer_and_does_not_count_against_the_custodian(db, manual_clock):
    connector = resilient(MockBank(code="mock_bank"), manual_clock)
    for _ in range(6):
        with pytest.raises(CustodianRejected):
            connector.get_balance("EXT-NOT-HERE", "USD")
    assert connector.breaker.state().state == "closed"


def test_a_connector_s_own_network_error_counts_as_unavailable(db, manual_clock):
    class Broken(MockBank):
        def get_supported_assets(self):
            raise ConnectionResetError("peer reset")

    connector = resilient(Broken(code="mock_bank"), manual_clock, attempts=2)
    with pytest.raises(CustodianUnavailable) as raised:
        connector.get_supported_assets()
    assert isinstance(raised.value.__cause__, ConnectionResetError)
    assert connector.breaker.state().consecutive_failures == 2


def test_the_registry_builds_the_configured_connector_behind_retries_and_breaker(mock_options):
    bank = mock_options(seed=42, latency_ms=0)
    connector = connector_for()
    assert connector.inner is bank and connector.code == "mock_bank"
    assert isinstance(connector.breaker, CircuitBreaker)
    assert connector.policy == RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
    assert connector_for("mock_bank") is connector
