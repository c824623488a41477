"""CRM pages, mounted at /crm/ on firm hosts (namespace ``crm``)."""

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from . import suitability_views, views
from .newsletter import views as newsletter_views

app_name = "crm"

urlpatterns = [
    path("contacts/", views.contact_list, name="contact-list"),
    path("contacts/new/", views.contact_create, name="contact-create"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact-detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact-edit"),
    path("contacts/<int:pk>/suitability/", suitability_views.contact_suitability, name="contact-suitability"),
    path("contacts/<int:pk>/log/", views.contact_log_activity, name="contact-log"),
    path("contacts/<int:pk>/merge/", views.contact_merge, name="contact-merge"),
    path("companies/", views.company_list, name="company-list"),
    path("companies/new/", views.company_create, name="company-create"),
    path("companies/<int:pk>/", views.company_detail, name="company-detail"),
    path("companies/<int:pk>/edit/", views.company_edit, name="company-edit"),
    path("companies/<int:pk>/merge/", views.company_merge, name="company-merge"),
    path("deals/", views.deal_list, name="deal-list"),
    path("deals/new/", views.deal_create, name="deal-create"),
    path("deals/<int:pk>/", views.deal_detail, name="deal-detail"),
    path("deals/<int:pk>/edit/", views.deal_edit, name="deal-edit"),
    path("deals/<int:pk>/move/", views.deal_move, name="deal-move"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("pipeline/stages/", views.pipeline_stages, name="pipeline-stages"),
    path("pipeline/stages/<int:pk>/", views.pipeline_stages, name="pipeline-stage-edit"),
    path("tasks/", views.task_list, name="task-list"),
    path("tasks/<int:pk>/complete/", views.task_complete, name="task-complete"),
    path("search/", views.search, name="search"),
    path("import/", views.import_start, name="import-start"),
    path("import/<int:pk>/", views.import_detail, name="import-detail"),
    path("import/<int:pk>/commit/", views.import_commit, name="import-commit"),
    path("import/<int:pk>/cancel/", views.import_cancel, name="import-cancel"),
    re_path(r"^export/(?P<what>contacts|companies|deals)\.csv$", views.export_csv, name="export"),
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
