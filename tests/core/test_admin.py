"""Every page of the console loads, and no event table can be edited from it by anyone."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from apps.core.models import event_models
from apps.core.seeding import seed_reference_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_every_changelist_loads_for_a_superuser(superuser_client):
    seed_reference_data()
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = superuser_client.get(url)
        assert response.status_code == 200, url


PRODUCTION_EVENT_MODELS = [m for m in event_models() if m.__module__.startswith("apps.")]


@pytest.mark.parametrize("model", PRODUCTION_EVENT_MODELS, ids=lambda m: m._meta.label)
def test_event_tables_are_read_only_in_the_console_for_superusers_too(rf, model):
    request = rf.get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
