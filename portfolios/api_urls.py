"""Portfolio API routes under /api/v1/ (inside the ``api`` namespace). Also wires the sub-apps
``portfolios.market`` and ``portfolios.alerts``, which keep their routes in their own modules."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api, custodian_api

router = SimpleRouter()
router.register("portfolios", api.PortfolioViewSet, basename="portfolio")
router.register(r"portfolios/(?P<portfolio_pk>\d+)/transactions", api.TransactionViewSet, basename="transaction")
router.register(r"portfolios/(?P<portfolio_pk>\d+)/lots", api.LotViewSet, basename="lot")
router.register("custodian/mappings", custodian_api.MappingViewSet, basename="custodian-mapping")
router.register("custodian/accounts", custodian_api.AccountViewSet, basename="custodian-account")
router.register("reconciliation/breaks", custodian_api.BreakViewSet, basename="reconciliation-break")

urlpatterns = [
    # before the router's transactions/<pk>/ route
    path(
        "portfolios/<int:portfolio_pk>/transactions/import/",
        api.TransactionImportView.as_view(),
        name="portfolio-transactions-import",
    ),
    path(
        "portfolios/<int:portfolio_pk>/transactions/export/",
        api.TransactionExportView.as_view(),
        name="portfolio-transactions-export",
    ),
    path(
        "portfolios/<int:portfolio_pk>/holdings/export/",
        api.HoldingsExportView.as_view(),
        name="portfolio-holdings-export",
    ),
    path("portfolios/<int:portfolio_pk>/holdings/", api.HoldingsView.as_view(), name="portfolio-holdings"),
    path("portfolios/<int:portfolio_pk>/performance/", api.PerformanceView.as_view(), name="portfolio-performance"),
    path("portfolios/<int:portfolio_pk>/allocation/", api.AllocationView.as_view(), name="portfolio-allocation"),
    path("portfolios/<int:portfolio_pk>/value-series/", api.ValueSeriesView.as_view(), name="portfolio-value-series"),
    path(
        "portfolios/<int:portfolio_pk>/realised-gains/",
        api.RealisedGainsView.as_view(),
        name="portfolio-realised-gains",
    ),
    path("firm/exposure/", api.FirmExposureView.as_view(), name="firm-exposure"),
    path("firm/ledger-settings/", custodian_api.LedgerSettingsView.as_view(), name="firm-ledger-settings"),
    path("custodian/positions/import/", custodian_api.PositionsImportView.as_view(), name="custodian-positions-import"),
    path(
        "custodian/transactions/import/",
        custodian_api.TransactionsByAccountImportView.as_view(),
        name="custodian-transactions-import",
    ),
    path(
        "portfolios/<int:portfolio_pk>/custodian-import/",
        custodian_api.TransactionsImportView.as_view(),
        name="portfolio-custodian-import",
    ),
    path("reconciliation/runs/", custodian_api.ReconciliationRunView.as_view(), name="reconciliation-run"),
    path("corporate-actions/", custodian_api.CorporateActionsView.as_view(), name="corporate-actions"),
    *router.urls,
]

for module in ("portfolios.market.api_urls", "portfolios.alerts.api_urls"):
    try:
        urlpatterns.append(path("", include(module)))
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
