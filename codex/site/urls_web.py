"""Routes of the web UI's own pages, included by the firm and public URLconfs."""

from django.urls import path

from . import history_views, views

# On every host that serves pages (public site and firms).
common_web_urls = [
    path("theme/", views.theme, name="theme"),
    path("favicon.ico", views.favicon, name="favicon"),
]

# On firm hosts only.
firm_web_urls = [
    *common_web_urls,
    path("settings/", views.firm_settings, name="settings"),
    path("brand.css", views.brand_css, name="brand-css"),
    path("history/export/", history_views.trail_export, name="history-export"),
    path("crm/contacts/<int:pk>/history/", history_views.contact_history, name="contact-history"),
    path("portfolios/<int:pk>/history/", history_views.portfolio_history, name="portfolio-history"),
    path(
        "portfolios/<int:pk>/transactions/<int:txn_pk>/history/",
        history_views.transaction_history,
        name="transaction-history",
    ),
]
