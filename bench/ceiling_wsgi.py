"""WSGI entry of the ceiling servers (C0 and C1); the settings module comes from the environment."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.ceiling_settings")
application = get_wsgi_application()
