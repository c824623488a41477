"""Portfolio pages at /portfolios/ on a firm host. The alerts sub-app's pages hang off /portfolios/alerts/."""

from django.urls import URLPattern, URLResolver, include, path

from . import instrument_views, views

app_name = "portfolios"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.portfolio_list, name="list"),
    path("new/", views.portfolio_create, name="create"),
    path("exposure/", views.exposure, name="exposure"),
    path("instruments/", instrument_views.instrument_index, name="instruments"),
    path("instruments/new/", instrument_views.instrument_create, name="instrument-create"),
    path("instruments/prices/import/", instrument_views.manual_prices_import, name="instrument-prices-import"),
    path("instruments/<int:pk>/", instrument_views.instrument_detail, name="instrument-detail"),
    path("reconciliation/", instrument_views.reconciliation, name="reconciliation"),
    path("<int:pk>/", views.portfolio_detail, name="detail"),
    path("<int:pk>/edit/", views.portfolio_edit, name="edit"),
    path("<int:pk>/archive/", views.portfolio_archive, name="archive"),
    path("<int:pk>/transactions/new/", views.transaction_create, name="transaction-create"),
    path("<int:pk>/transactions/<int:txn_pk>/edit/", views.transaction_edit, name="transaction-edit"),
    path("<int:pk>/transactions/<int:txn_pk>/delete/", views.transaction_delete, name="transaction-delete"),
    path("<int:pk>/transactions/restore/", views.transaction_restore, name="transaction-restore"),
    path("<int:pk>/import/", views.transaction_import, name="import"),
    path("<int:pk>/export/transactions.csv", views.export_transactions_csv, name="export-transactions"),
    path("<int:pk>/export/holdings.csv", views.export_holdings_csv, name="export-holdings"),
]

urlpatterns += [path("alerts/", include("portfolios.alerts.urls"))]
