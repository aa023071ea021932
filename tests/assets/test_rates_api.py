"""The rates API answers the quote customers get: the mid, and the bid and ask around it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(UserFactory())
    return client


def test_a_rate_answers_its_mid_bid_and_ask(api, record_rate):
    record_rate("GBP", "USD", "1.25")
    body = api.get("/api/v1/exchange-rates/USD/GBP").json()
    assert set(body) == {"from", "to", "rate", "bid", "ask", "source", "valid_at", "expires_at"}
    assert (body["from"], body["to"], body["rate"]) == ("USD", "GBP", "0.8")
    assert D(body["bid"]) < D("0.8") < D(body["ask"])
    assert D(body["bid"]) <= 1 / (D("1.25") * D("1.0025"))  # the inverse of the GBP/USD ask


def test_convert_answers_the_customer_quote_at_the_bid(api, record_rate):
    record_rate("USD", "JPY", "150")
    body = api.get("/api/v1/exchange-rates/USD/JPY/convert?amount=10000").json()
    assert body == {
        "from": "USD",
        "to": "JPY",
        "amount": 10000,
        "converted_amount": 14962,  # 100.00 USD at 149.625, rounded down
        "rate": "149.625",
    }


def test_the_list_shows_the_rate_in_force_of_each_pair_only(api, record_rate):
    record_rate("EUR", "USD", "1.08")
    record_rate("USD", "EUR", "0.92")  # newer: it defines EUR/USD too
    results = api.get("/api/v1/exchange-rates").json()["results"]
    assert [(r["from"], r["to"], r["rate"]) for r in results] == [("USD", "EUR", "0.92")]
    assert D(results[0]["bid"]) == D("0.92") * D("0.9975")


def test_a_pending_rate_is_not_served(api, record_rate):
    record_rate("USD", "GBP", "0.787", ago=dt.timedelta(hours=1))
    assert record_rate("USD", "GBP", "7.5").status == "pending"
    assert api.get("/api/v1/exchange-rates/USD/GBP").json()["rate"] == "0.787"
