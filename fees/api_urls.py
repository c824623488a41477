"""Fee routes under /api/v1/ (namespace ``api``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("products", api.ProductViewSet, basename="product")
router.register("fee-schedules", api.FeeScheduleViewSet, basename="fee-schedule")
router.register("billing-groups", api.BillingGroupViewSet, basename="billing-group")
router.register("client-subscriptions", api.ClientSubscriptionViewSet, basename="client-subscription")
router.register("fee-runs", api.FeeRunViewSet, basename="fee-run")
router.register("fee-run-jobs", api.FeeRunJobViewSet, basename="fee-run-job")
router.register("fee-invoices", api.FeeInvoiceViewSet, basename="fee-invoice")
router.register("fee-statements", api.FeeStatementViewSet, basename="fee-statement")

urlpatterns = [
    path(
        "portfolios/<int:portfolio_pk>/fee-returns/",
        api.PortfolioFeeReturnsView.as_view(),
        name="portfolio-fee-returns",
    ),
    path("fee-revenue/", api.FeeRevenueView.as_view(), name="fee-revenue"),
    path("fee-revenue/export/", api.FeeRevenueExportView.as_view(), name="fee-revenue-export"),
    *router.urls,
]
