"""Write side of users."""

from __future__ import annotations

from django.db import transaction

from apps.users.models import User


@transaction.atomic
def demo_user_ensure(*, email: str, name: str, password: str, staff: bool) -> User:
    """Create the demo user, or reset its password and role so a second `make run` works too."""
    user = User.objects.filter(email=email).first()
    if user is None:
        if staff:
            return User.objects.create_superuser(email, password, name=name)
        return User.objects.create_user(email, password, name=name)
    user.name = name
    user.is_staff = user.is_superuser = staff
    user.is_active = True
    user.set_password(password)
    user.save()
    return user
