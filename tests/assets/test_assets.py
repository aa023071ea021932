"""Defining, activating and deactivating assets, and the asset selectors."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.assets.aggregates import asset_uuid
from apps.assets.models import Asset, AssetEvent
from apps.assets.selectors import asset_get, asset_get_active, asset_list, asset_precisions
from apps.assets.services import asset_activate, asset_deactivate, asset_define
from apps.core.context import command_context
from apps.core.errors import AssetInactive, AssetNotFound, DomainError, InvalidInput

pytestmark = pytest.mark.django_db


def _events(code):
    return list(
        AssetEvent.objects.filter(aggregate_uuid=asset_uuid(code)).values_list(
            "event_type", "event_data"
        )
    )


def test_define_records_one_event_and_the_read_model():
    asset = asset_define(
        code="XAU", name="Gold", type="commodity", precision=3, metadata={"unit": "troy ounce"}
    )
    assert (asset.code, asset.name, asset.type, asset.precision, asset.is_active) == (
        "XAU",
        "Gold",
        "commodity",
        3,
        True,
    )
    assert asset.metadata == {"unit": "troy ounce"}
    assert asset.uuid == asset_uuid("XAU")
    assert _events("XAU") == [
        (
            "assets.AssetDefined",
            {
                "code": "XAU",
                "name": "Gold",
                "type": "commodity",
                "precision": 3,
                "metadata": {"unit": "troy ounce"},
            },
        )
    ]


def test_the_same_definition_again_changes_nothing():
    asset_define(code="USD", name="US Dollar", type="fiat", precision=2)
    again = asset_define(code="USD", name="US Dollar", type="fiat", precision=2, metadata={})
    assert again.code == "USD"
    assert len(_events("USD")) == 1


def test_a_different_definition_of_a_code_is_refused():
    asset_define(code="USD", name="US Dollar", type="fiat", precision=2)
    with pytest.raises(DomainError) as caught:
        asset_define(code="USD", name="US Dollar", type="fiat", precision=3)
    assert caught.value.code == "ASSET_ALREADY_DEFINED"
    assert Asset.objects.get(code="USD").precision == 2
    assert len(_events("USD")) == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("code", {"code": "usd"}),
        ("code", {"code": "TOO-LONG-CODE"}),
        ("name", {"name": ""}),
        ("type", {"type": "stock"}),
        ("precision", {"precision": -1}),
        ("precision", {"precision": 19}),
        ("precision", {"precision": True}),
        ("metadata", {"metadata": {"weight": 1.5}}),
        ("metadata", {"metadata": ["not", "a", "dict"]}),
    ],
)
def test_invalid_definitions_are_refused_with_details(field, kwargs):
    arguments = {"code": "USD", "name": "US Dollar", "type": "fiat", "precision": 2, **kwargs}
    with pytest.raises(InvalidInput) as caught:
        asset_define(**arguments)
    assert caught.value.code == "VALIDATION_ERROR"
    assert any(key.startswith(field) for key in caught.value.details)
    assert not AssetEvent.objects.exists()


def test_deactivate_then_activate_records_who_did_it():
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    with command_context(actor={"type": "staff", "id": "42"}):
        deactivated = asset_deactivate(code="EUR", reason="sanctions review")
    assert deactivated.is_active is False
    assert asset_activate(code="EUR").is_active is True
    assert _events("EUR")[1:] == [
        ("assets.AssetDeactivated", {"by": "staff:42", "reason": "sanctions review"}),
        ("assets.AssetActivated", {"by": "system:system", "reason": ""}),
    ]
    meta = AssetEvent.objects.filter(event_type="assets.AssetDeactivated").get().meta_data
    assert meta["actor"] == {"type": "staff", "id": "42"}


def test_activating_an_active_asset_is_a_domain_error():
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    with pytest.raises(DomainError) as caught:
        asset_activate(code="EUR")
    assert caught.value.code == "ASSET_ALREADY_ACTIVE"
    assert caught.value.details == {"asset_code": "EUR"}
    assert len(_events("EUR")) == 1


def test_deactivating_an_inactive_asset_is_a_domain_error():
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    asset_deactivate(code="EUR")
    with pytest.raises(DomainError) as caught:
        asset_deactivate(code="EUR")
    assert caught.value.code == "ASSET_ALREADY_INACTIVE"
    assert len(_events("EUR")) == 2


def test_activating_an_unknown_asset_is_asset_not_found():
    with pytest.raises(AssetNotFound) as caught:
        asset_activate(code="XYZ")
    assert caught.value.code == "ASSET_NOT_FOUND"
    assert caught.value.details == {"asset_code": "XYZ"}


def test_asset_get_and_asset_get_active():
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    assert asset_get("EUR").name == "Euro"
    assert asset_get_active("EUR").code == "EUR"
    with pytest.raises(AssetNotFound) as missing:
        asset_get("NOPE")
    assert missing.value.details == {"asset_code": "NOPE"}
    asset_deactivate(code="EUR")
    assert asset_get("EUR").is_active is False
    with pytest.raises(AssetInactive) as inactive:
        asset_get_active("EUR")
    assert inactive.value.code == "ASSET_INACTIVE"
    assert inactive.value.details == {"asset_code": "EUR"}


def test_asset_list_filters_by_type_and_activity():
    asset_define(code="USD", name="US Dollar", type="fiat", precision=2)
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    asset_define(code="BTC", name="Bitcoin", type="crypto", precision=8)
    asset_deactivate(code="EUR")
    assert [a.code for a in asset_list()] == ["BTC", "EUR", "USD"]
    assert [a.code for a in asset_list(type="fiat")] == ["EUR", "USD"]
    assert [a.code for a in asset_list(is_active=True)] == ["BTC", "USD"]
    assert [a.code for a in asset_list(type="fiat", is_active=False)] == ["EUR"]


def test_asset_precisions_are_cached_and_dropped_when_an_asset_is_defined(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        asset_define(code="USD", name="US Dollar", type="fiat", precision=2)
    assert asset_precisions() == {"USD": 2}
    with django_capture_on_commit_callbacks(execute=True):
        asset_define(code="JPY", name="Japanese Yen", type="fiat", precision=0)
    assert asset_precisions() == {"USD": 2, "JPY": 0}


def test_a_refused_command_leaves_no_event_behind():
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    with transaction.atomic(), pytest.raises(DomainError):
        asset_activate(code="EUR")
    assert len(_events("EUR")) == 1
