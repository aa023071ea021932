"""Reference and demo data: each app's AppConfig may define `seed_reference_data()` and
`seed_demo_data(demo_users)`; these run them in INSTALLED_APPS order. Both must be idempotent."""

from __future__ import annotations

from typing import Any

from django.apps import apps


def seed_reference_data() -> list[str]:
    seeded = []
    for config in apps.get_app_configs():
        seed = getattr(config, "seed_reference_data", None)
        if seed is not None:
            seed()
            seeded.append(config.label)
    return seeded


def seed_demo_data(demo_users: dict[str, Any]) -> list[str]:
    seeded = []
    for config in apps.get_app_configs():
        seed = getattr(config, "seed_demo_data", None)
        if seed is not None:
            seed(demo_users)
            seeded.append(config.label)
    return seeded
