"""Routes of the web UI's own pages, included by the firm and public URLconfs."""

from django.urls import path

from . import views

# On every host that serves pages (public site and firms).
common_web_urls = [
    path("theme/", views.theme, name="theme"),
]

# On firm hosts only.
firm_web_urls = [
    *common_web_urls,
    path("settings/", views.firm_settings, name="settings"),
    path("brand.css", views.brand_css, name="brand-css"),
]
