"""Pages under /fees/ (namespace ``fees``)."""

from django.urls import path

from . import views

app_name = "fees"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("products/", views.product_list, name="products"),
    path("products/new/", views.product_create, name="product-new"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    path("schedules/new/", views.schedule_create, name="schedule-new"),
    path("schedules/<int:pk>/", views.schedule_detail, name="schedule"),
    path("groups/", views.group_list, name="groups"),
    path("groups/new/", views.group_create, name="group-new"),
    path("groups/<int:pk>/", views.group_detail, name="group"),
    path("subscriptions/", views.subscription_list, name="subscriptions"),
    path("subscriptions/new/", views.subscription_create, name="subscription-new"),
    path("subscriptions/<int:pk>/", views.subscription_detail, name="subscription"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<int:pk>/void/", views.invoice_void, name="invoice-void"),
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/approve/", views.run_approve, name="run-approve"),
    path("runs/<int:pk>/issue/", views.run_issue, name="run-issue"),
    path("revenue/", views.revenue, name="revenue"),
    path("revenue.csv", views.revenue_csv, name="revenue-csv"),
]
