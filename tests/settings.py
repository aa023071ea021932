"""Settings for the test suite: the project's settings plus a small event-sourced test app."""

import os

os.environ.setdefault("DEBUG", "1")

from finaegis.settings import *  # noqa: F403
from finaegis.settings import INSTALLED_APPS, STORAGES

INSTALLED_APPS = [*INSTALLED_APPS, "tests.eventstore_app"]

# Hashing passwords slowly proves nothing in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
