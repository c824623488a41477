"""The firm's billing pages, at /billing/ on the firm's host."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("change/", views.change_plan, name="change"),
    path("cancel/", views.cancel, name="cancel"),
    path("reactivate/", views.reactivate, name="reactivate"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice"),
]
