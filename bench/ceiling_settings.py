"""C0: the framework's own limit. Django's ``startproject`` apps and middleware, no database.

Served by the same gunicorn set-up as Codex (``gunicorn.conf.py``, 2 sync workers):
``DJANGO_SETTINGS_MODULE=bench.ceiling_settings gunicorn -c gunicorn.conf.py bench.ceiling_wsgi:application``.
"""

SECRET_KEY = "bench-ceiling-only-0123456789-abcdefghijklmnopqrstuvwxyz-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
# Exactly the list ``django-admin startproject`` writes.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "bench.ceiling_urls"
DATABASES = {}
USE_TZ = True
STATIC_URL = "/static/"
