from django.urls import path

from codex import health

health_urls = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
]

handler400 = "codex.site.views.handler400"
handler403 = "codex.site.views.handler403"
handler404 = "codex.site.views.handler404"
handler500 = "codex.site.views.handler500"
