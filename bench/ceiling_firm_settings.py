"""C1: what the hardware and database allow for 25 rows of a firm, with no Codex machinery.

Codex's own settings (same database, same connection settings, production mode, same app registry,
so the ``Portfolio`` model and table are the real ones), but:

- ``MIDDLEWARE``: ``FirmFromHost`` (below), then exactly Django's ``startproject`` list;
- ``ROOT_URLCONF``: ``bench.ceiling_urls`` (``/bench/rows/`` = ``bench.ceiling_views.firm_rows``);
- ``ENGINE``: django-tenants' own backend (Codex's adds slow-query timing to every query).

``FirmFromHost`` looks the firm up by host once per process and keeps it in a dict forever (no cache
server, no invalidation, no status check), then switches the connection to the firm's schema: the
cheapest correct routing there can be, so C1 is a ceiling, not a straw man.
"""

from codex.settings import *  # noqa: F403

MIDDLEWARE = [
    "bench.ceiling_firm_settings.FirmFromHost",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "bench.ceiling_urls"
# django-tenants' backend as it ships: no slow-query timing around each query (codex/db/base.py).
DATABASES = {"default": {**DATABASES["default"], "ENGINE": "django_tenants.postgresql_backend"}}  # noqa: F405


class FirmFromHost:
    _tenants: dict = {}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection
        from django.http import HttpResponseNotFound

        host = request.get_host().split(":")[0]
        tenant = self._tenants.get(host)
        if tenant is None:
            from tenants.models import Domain

            connection.set_schema_to_public()
            domain = Domain.objects.select_related("tenant").filter(domain=host).first()
            if domain is None:
                if request.path == "/health":
                    return self.get_response(request)
                return HttpResponseNotFound()
            tenant = self._tenants[host] = domain.tenant
        connection.set_tenant(tenant)
        return self.get_response(request)
