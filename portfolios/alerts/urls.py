"""Alerts pages under /portfolios/alerts/ (included by ``portfolios.urls``, namespace ``portfolios:alerts``)."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_list, name="list"),
    path("read/", views.mark_read, name="mark-read"),
    path("rules/<int:pk>/toggle/", views.rule_toggle, name="rule-toggle"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule-delete"),
]
