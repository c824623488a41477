"""Billing routes under /api/v1/ (namespace ``api``)."""

from django.urls import path

from . import api

urlpatterns = [
    path("billing/plans/", api.PlanListView.as_view(), name="billing-plans"),
    path("billing/subscription/", api.SubscriptionView.as_view(), name="billing-subscription"),
    path("billing/usage/", api.UsageView.as_view(), name="billing-usage"),
    path("billing/invoices/", api.InvoiceListView.as_view(), name="billing-invoice-list"),
    path("billing/invoices/<int:pk>/", api.InvoiceDetailView.as_view(), name="billing-invoice-detail"),
    path("billing/plan-change/", api.PlanChangeView.as_view(), name="billing-plan-change"),
    path("billing/cancel/", api.CancelView.as_view(), name="billing-cancel"),
    path("billing/reactivate/", api.ReactivateView.as_view(), name="billing-reactivate"),
]
