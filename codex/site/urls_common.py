from django.urls import path

from . import health

health_urls = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
]

handler400 = "codex.views.handler400"
handler403 = "codex.views.handler403"
handler404 = "codex.views.handler404"
handler500 = "codex.views.handler500"
