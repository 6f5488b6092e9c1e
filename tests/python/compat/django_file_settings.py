"""Django's own test settings (tests/test_sqlite.py) with file databases instead of the
in-memory default: ``make compat`` runs Django's suite with both (mk/compat.mk)."""

import os

_DIR = os.environ.get("DJANGO_COMPAT_DB_DIR", ".")

DATABASES = {
    alias: {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_DIR, f"{alias}.db"),
        "TEST": {"NAME": os.path.join(_DIR, f"test_{alias}.db")},
    }
    for alias in ("default", "other")
}

SECRET_KEY = "django_tests_secret_key"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = False
