"""Settings of the shop, with nothing of the agent in them: ``rasp run`` protects it as is.

``settings_rasp.py`` is the same shop with the agent's middleware added by hand.
"""

from __future__ import annotations

import os
import tempfile

DB_PATH = os.environ.get("SHOP_DB") or os.path.join(tempfile.gettempdir(), "django_shop.db")
# Downloadable files; the shop's data (its database, its secrets) lies beside, outside it.
FILES_DIR = os.path.join(os.path.dirname(os.path.abspath(DB_PATH)), "files")

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "django-shop-example-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["shop"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "shop.views"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DB_PATH,
        "OPTIONS": {"timeout": 30},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
