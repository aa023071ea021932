"""Granting model permissions to the staff groups from data migrations."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions


def ensure_permissions(apps) -> None:
    """Permissions are normally created after all migrations ran; the groups need them now."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant(apps, roles: dict[str, list[str]]) -> None:
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codes in roles.items():
        group, _ = Group.objects.get_or_create(name=role)
        for code in codes:
            app_label, codename = code.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, roles: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    for role, codes in roles.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        for code in codes:
            app_label, codename = code.split(".")
            group.permissions.remove(
                *group.permissions.filter(content_type__app_label=app_label, codename=codename)
            )
