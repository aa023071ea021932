"""Celery tasks of baskets: thin wrappers around services, under stable names."""

from __future__ import annotations

from celery import shared_task

from apps.baskets.services import (
    basket_compositions_apply_monthly,
    basket_values_record,
    basket_votes_open_monthly,
    baskets_rebalance_due,
)


@shared_task(name="baskets.record_basket_values")
def record_basket_values_task() -> dict:
    """Hourly: record the USD value of every active basket (a missing rate: logged, no row)."""
    return basket_values_record()


@shared_task(name="baskets.open_monthly_composition_votes")
def open_monthly_composition_votes_task() -> dict:
    """On the 20th: open next month's composition vote of every monthly dynamic basket."""
    return basket_votes_open_monthly()


@shared_task(name="baskets.apply_monthly_compositions")
def apply_monthly_compositions_task() -> dict:
    """On the 1st: close the month's vote if still open, apply the decided composition and
    rebalance."""
    return basket_compositions_apply_monthly()


@shared_task(name="baskets.rebalance_due_baskets")
def rebalance_due_baskets_task() -> dict:
    """Daily: apply compositions whose day has come (a catch-up for the 1st) and rebalance the
    dynamic baskets whose rebalancing period has begun (daily, weekly, monthly, quarterly)."""
    return baskets_rebalance_due()
