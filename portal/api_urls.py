"""``/api/v1/portal/``: the client portal's operations (inside the ``api`` namespace)."""

from django.urls import path

from . import api

urlpatterns = [
    path("portal/me/", api.MeView.as_view(), name="portal-me"),
    path("portal/overview/", api.OverviewView.as_view(), name="portal-overview"),
    path("portal/portfolios/<int:pk>/", api.PortfolioDetailView.as_view(), name="portal-portfolio"),
    path("portal/portfolios/<int:pk>/value-series/", api.ValueSeriesView.as_view(), name="portal-value-series"),
    path("portal/portfolios/<int:pk>/transactions/", api.TransactionListView.as_view(), name="portal-transactions"),
    path(
        "portal/portfolios/<int:pk>/transactions/export/",
        api.TransactionExportView.as_view(),
        name="portal-transactions-export",
    ),
    path("portal/documents/", api.DocumentListView.as_view(), name="portal-documents"),
    path("portal/documents/<int:pk>/", api.DocumentDetailView.as_view(), name="portal-document"),
    path("portal/fee-statements/<int:pk>/", api.FeeStatementDetailView.as_view(), name="portal-fee-statement"),
    path("portal/advisor/", api.AdvisorView.as_view(), name="portal-advisor"),
    path("portal/posts/", api.PostListView.as_view(), name="portal-posts"),
]
