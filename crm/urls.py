"""CRM pages, mounted at /crm/ on firm hosts (namespace ``crm``)."""

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from . import suitability_views
from .newsletter import views as newsletter_views
from .views import companies, contacts, deals, search, tasks, transfer

app_name = "crm"

urlpatterns = [
    path("contacts/", contacts.contact_list, name="contact-list"),
    path("contacts/columns/", contacts.contact_list_columns, name="contact-list-columns"),
    path("contacts/new/", contacts.contact_create, name="contact-create"),
    path("contacts/<int:pk>/", contacts.contact_detail, name="contact-detail"),
    path("contacts/<int:pk>/edit/", contacts.contact_edit, name="contact-edit"),
    path("contacts/<int:pk>/suitability/", suitability_views.contact_suitability, name="contact-suitability"),
    path("contacts/<int:pk>/log/", contacts.contact_log_activity, name="contact-log"),
    path("contacts/<int:pk>/merge/", contacts.contact_merge, name="contact-merge"),
    path("companies/", companies.company_list, name="company-list"),
    path("companies/new/", companies.company_create, name="company-create"),
    path("companies/<int:pk>/", companies.company_detail, name="company-detail"),
    path("companies/<int:pk>/edit/", companies.company_edit, name="company-edit"),
    path("companies/<int:pk>/merge/", companies.company_merge, name="company-merge"),
    path("deals/", deals.deal_list, name="deal-list"),
    path("deals/new/", deals.deal_create, name="deal-create"),
    path("deals/<int:pk>/", deals.deal_detail, name="deal-detail"),
    path("deals/<int:pk>/edit/", deals.deal_edit, name="deal-edit"),
    path("deals/<int:pk>/move/", deals.deal_move, name="deal-move"),
    path("pipeline/", deals.pipeline, name="pipeline"),
    path("pipeline/stages/", deals.pipeline_stages, name="pipeline-stages"),
    path("pipeline/stages/<int:pk>/", deals.pipeline_stages, name="pipeline-stage-edit"),
    path("tasks/", tasks.task_list, name="task-list"),
    path("tasks/<int:pk>/complete/", tasks.task_complete, name="task-complete"),
    path("search/", search.search, name="search"),
    path("import/", transfer.import_start, name="import-start"),
    path("import/<int:pk>/", transfer.import_detail, name="import-detail"),
    path("import/<int:pk>/commit/", transfer.import_commit, name="import-commit"),
    path("import/<int:pk>/cancel/", transfer.import_cancel, name="import-cancel"),
    re_path(r"^export/(?P<what>contacts|companies|deals)\.csv$", transfer.export_csv, name="export"),
    path("newsletter/", newsletter_views.newsletter, name="newsletter"),
    path(
        "newsletter/subscribers/<int:pk>/unsubscribe/",
        newsletter_views.subscriber_unsubscribe,
        name="subscriber-unsubscribe",
    ),
    path("newsletter/campaigns/new/", newsletter_views.campaign_edit, name="campaign-create"),
    path("newsletter/campaigns/<int:pk>/", newsletter_views.campaign_edit, name="campaign-edit"),
    path("newsletter/campaigns/<int:pk>/send/", newsletter_views.campaign_send, name="campaign-send"),
    # Public, no login: the links in newsletter mails. The unsubscribe POST is exempt from CSRF so
    # that mail clients' one-click unsubscribe (RFC 8058) works; the signed token is the credential.
    path("newsletter/subscribe/", newsletter_views.public_subscribe, name="newsletter-subscribe"),
    path("newsletter/confirm/<str:token>/", newsletter_views.public_confirm, name="newsletter-confirm"),
    path(
        "newsletter/unsubscribe/<str:token>/",
        csrf_exempt(newsletter_views.public_unsubscribe),
        name="newsletter-unsubscribe",
    ),
]
