"""Portfolio pages at /portfolios/ on a firm host. The alerts sub-app's pages hang off /portfolios/alerts/."""

from django.urls import URLPattern, URLResolver, include, path

from . import custodian_views, instrument_views, views

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
    path("feeds/", custodian_views.feed_health, name="feed-health"),
    path("corporate-actions/", custodian_views.corporate_action_list, name="corporate-actions"),
    path("custodian/", custodian_views.custodian_setup, name="custodian-setup"),
    path("custodian/mappings/new/", custodian_views.mapping_create, name="custodian-mapping-create"),
    path("custodian/mappings/<int:pk>/edit/", custodian_views.mapping_edit, name="custodian-mapping-edit"),
    path("custodian/accounts/new/", custodian_views.account_create, name="custodian-account-create"),
    path("custodian/accounts/<int:pk>/edit/", custodian_views.account_edit, name="custodian-account-edit"),
    path("custodian/imports/", custodian_views.custodian_imports, name="custodian-imports"),
    path("custodian/imports/cancel/", custodian_views.custodian_import_cancel, name="custodian-import-cancel"),
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
