"""The request path is Django's and the libraries' own (issue 18, docs/decisions/0706): the stock
middleware classes, Django's CSP with a nonce per page, and every deploy check on and passing."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.utils.module_loading import import_string

STOCK = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]
LIBRARIES = ("django.", "whitenoise.", "corsheaders.", "django_otp.")
APP_PACKAGES = ("codex.", "tenants.", "billing.", "portfolios.", "crm.", "portal.")


def test_the_stack_holds_the_stock_classes_in_django_order():
    stock_in_stack = [path for path in settings.MIDDLEWARE if path.startswith(LIBRARIES)]
    assert stock_in_stack == STOCK


def test_codex_middlewares_are_its_own_not_rewrites_of_a_librarys():
    own = [path for path in settings.MIDDLEWARE if not path.startswith(LIBRARIES)]
    assert own and all(path.startswith(APP_PACKAGES) for path in own)
    for path in own:
        cls = import_string(path)
        borrowed = [base for base in cls.__mro__ if base.__module__.startswith(LIBRARIES)]
        assert borrowed == [], f"{path} subclasses {borrowed}"


def test_no_system_check_is_silenced():
    assert settings.SILENCED_SYSTEM_CHECKS == []


@pytest.mark.django_db
def test_anonymous_and_signed_in_users_resolve_through_the_stack(anon_client, owner_client, owner):
    assert anon_client.get("/accounts/login/").wsgi_request.user.is_authenticated is False
    response = owner_client.get("/accounts/security/")
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert user.is_authenticated and user.pk == owner.pk
    assert user.is_verified() is False  # django-otp's accessor installed on the lazy user


def _nonces(response) -> tuple[set[str], set[str]]:
    header = response.headers["Content-Security-Policy"]
    in_header = set(re.findall(r"'nonce-([^']+)'", header))
    in_page = set(re.findall(r'<script\b[^>]*\bnonce="([^"]+)"', response.content.decode()))
    return in_header, in_page


@pytest.mark.django_db
def test_each_page_gets_a_fresh_nonce_in_its_policy_and_its_scripts(owner_client):
    first, second = owner_client.get("/accounts/security/"), owner_client.get("/accounts/security/")
    assert first.status_code == second.status_code == 200
    header_1, page_1 = _nonces(first)
    header_2, page_2 = _nonces(second)
    assert len(header_1) == 1 and header_1 == page_1
    assert header_2 == page_2 and header_1 != header_2


@pytest.mark.django_db
def test_an_api_answer_gets_the_policy_without_a_nonce(owner_client):
    response = owner_client.get("/api/v1/me/")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "nonce-" not in policy


@pytest.mark.django_db
def test_production_settings_pass_every_deploy_check():
    """``manage.py check --deploy --fail-level WARNING`` with production's settings, nothing silenced."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "CODEX_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "codex.settings",
    }
    result = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
