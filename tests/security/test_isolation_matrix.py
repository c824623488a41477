"""The isolation matrix: every page and API operation, for every object kind, as every persona.

Generated from the URL configuration (``codex.site.urls_tenant``) and the OpenAPI schema: each route
must have an entry in ``PAGES`` or ``API`` below, so a new endpoint without one fails
``test_every_route_is_in_the_matrix``. Objects of every kind are planted in acme, private to
``advisor2`` and marked ``ACMEPRIVATE``, and in globex, marked ``GLOBEXSECRET``; then:

(a) acme's owner reaches every object (and sees its marker: the markers can be found);
(b) an advisor outside the object's book is refused (403/404) and never sees ACMEPRIVATE;
(c) a viewer's writes are all refused (403/404/405, or a page redisplayed with the refusal);
(d) globex's user session, API key and bearer token get nothing at acme (anonymous, 401), and
    globex's key on the API host with acme's ids never sees ACMEPRIVATE;
(e) anonymous callers are sent to sign in (pages) or get 401 (API).
No response at acme's host ever contains GLOBEXSECRET. Expectations are explicit per route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.db import connection

from tests.conftest import PASSWORD, FirmClient
from tests.security import world
from tests.security.urlwalk import routes

pytestmark = pytest.mark.django_db

ACME, GLOBEX = "ACMEPRIVATE", "GLOBEXSECRET"  # book objects; firm-wide ones add "FIRMWIDE"
ACME_FIRMWIDE = "ACMEPRIVATEFIRMWIDE"

# --- expectations ----------------------------------------------------------------------------------------
# GET access levels. "book": members see it unless it is in another advisor's book; "firm": owners,
# admins and viewers (who read everything) but not advisors; "writer": owners, admins, advisors;
# "manager": owners and admins; "owner": owners; "public": no sign-in needed; "none": no GET (405).
# POST: None (no writes), "writer", "manager", "owner", "public", "self" (any signed-in member, own
# account only).


@dataclass(frozen=True)
class E:
    get: str = "member"
    post: str | None = None
    kinds: dict = field(default_factory=dict)  # URL parameter -> object kind
    book: bool = False  # the object belongs to an advisor's book
    query: str = ""  # added to the path of GETs
    # How a refused POST answers: "status" (403/404/405); "redirect" (back to the page with an
    # error message) or "form" (the form redisplayed with the refusal): those are also proven
    # with valid data in test_viewer_writes_refused_inside_pages_change_nothing.
    refusal: str = "status"

    def values(self, ids: dict) -> dict:
        return {param: ids.get(kind, kind) for param, kind in self.kinds.items()}


P = {"pk": "portfolio"}
PT = {"pk": "portfolio", "txn_pk": "transaction"}

PAGES: dict[str, E] = {
    "health": E("public"),
    "ready": E("public"),
    "": E("member"),
    "theme/": E("none", "public"),
    "favicon.ico": E("public"),
    "settings/": E("member", "manager"),
    "brand.css": E("public"),
    "accounts/security/": E("member"),
    "accounts/security/2fa/setup/": E("member", "self"),
    "accounts/security/2fa/verify/": E("member", "self"),
    "accounts/security/recovery-codes/": E("none", "self"),
    "accounts/security/2fa/disable/": E("none", "self"),
    "accounts/security/sign-out-everywhere/": E("none", "self"),
    "accounts/login/": E("public", "public"),
    "accounts/logout/": E("none", "public"),
    "accounts/logout/everywhere/": E("none", "self"),
    "accounts/password/change/": E("member", "self"),
    "accounts/password/change/done/": E("member"),
    "accounts/password/reset/": E("public", "public"),
    "accounts/password/reset/sent/": E("public"),
    "accounts/password/reset/<uidb64>/<token>/": E("public", "public", {"uidb64": "x", "token": "x"}),
    "accounts/password/reset/complete/": E("public"),
    "accounts/profile/": E("member", "self"),
    "accounts/team/": E("manager", "manager"),
    "accounts/team/<int:pk>/role/": E("none", "manager", {"pk": "member"}),
    "accounts/team/<int:pk>/deactivate/": E("none", "manager", {"pk": "member"}),
    "accounts/team/<int:pk>/reactivate/": E("none", "manager", {"pk": "member"}),
    "accounts/team/<int:pk>/reset-2fa/": E("none", "manager", {"pk": "member"}),
    "accounts/team/invitations/<int:pk>/revoke/": E("none", "manager", {"pk": "invitation"}),
    "accounts/invitation/<str:token>/": E("public", "public", {"token": "x"}),
    "accounts/api-keys/": E("manager", "manager"),
    "accounts/api-keys/<int:pk>/revoke/": E("none", "manager", {"pk": "api_key"}),
    "accounts/audit/": E("owner"),
    "accounts/support/enter/<str:token>/": E("public", None, {"token": "x"}),
    "accounts/welcome/<str:token>/": E("public", None, {"token": "x"}),
    "accounts/support/end/": E("none", "public"),
    "portfolios/": E("member", None),
    "portfolios/new/": E("writer", "writer"),
    "portfolios/exposure/": E("member"),
    "portfolios/instruments/": E("member"),
    "portfolios/instruments/new/": E("writer", "writer"),
    "portfolios/instruments/prices/import/": E("none", "writer"),
    "portfolios/instruments/<int:pk>/": E("member", "writer", {"pk": "firm_instrument"}),
    "portfolios/reconciliation/": E("member", "writer", refusal="status"),
    "portfolios/feeds/": E("member"),
    "portfolios/corporate-actions/": E("member", "manager"),
    "portfolios/custodian/": E("manager"),
    "portfolios/custodian/mappings/new/": E("manager", "manager"),
    "portfolios/custodian/mappings/<int:pk>/edit/": E("manager", "manager", {"pk": "custodian_mapping"}),
    "portfolios/custodian/accounts/new/": E("manager", "manager"),
    "portfolios/custodian/accounts/<int:pk>/edit/": E("manager", "manager", {"pk": "custodian_account"}),
    "portfolios/custodian/imports/": E("manager", "manager"),
    "portfolios/custodian/imports/cancel/": E("none", "manager"),
    "portfolios/<int:pk>/": E("book", None, P, book=True),
    "portfolios/<int:pk>/edit/": E("writer", "writer", P, book=True),
    "portfolios/<int:pk>/archive/": E("none", "writer", P, book=True),
    "portfolios/<int:pk>/transactions/new/": E("writer", "writer", P, book=True),
    "portfolios/<int:pk>/transactions/<int:txn_pk>/edit/": E("writer", "writer", PT, book=True),
    "portfolios/<int:pk>/transactions/<int:txn_pk>/delete/": E("none", "writer", PT, book=True),
    "portfolios/<int:pk>/transactions/restore/": E("none", "writer", P, book=True),
    "portfolios/<int:pk>/history/": E("book", None, P, book=True),
    "portfolios/<int:pk>/transactions/<int:txn_pk>/history/": E("book", None, PT, book=True),
    "history/export/": E("owner"),
    "portfolios/<int:pk>/import/": E("writer", "writer", P, book=True),
    "portfolios/<int:pk>/export/transactions.csv": E("book", None, P, book=True),
    "portfolios/<int:pk>/export/holdings.csv": E("book", None, P, book=True),
    "portfolios/alerts/": E("member", "writer", refusal="redirect"),
    "portfolios/alerts/read/": E("none", "self"),
    "notifications/": E("member"),
    "notifications/read/": E("none", "self"),
    "notifications/<int:pk>/open/": E("none", "self", {"pk": "notification"}),
    "portfolios/alerts/rules/<int:pk>/toggle/": E("none", "writer", {"pk": "alert_rule"}),
    "portfolios/alerts/rules/<int:pk>/delete/": E("none", "writer", {"pk": "alert_rule"}),
    "crm/contacts/": E("member"),
    "crm/contacts/columns/": E("none", "self"),
    "crm/contacts/new/": E("writer", "writer"),
    "crm/contacts/<int:pk>/": E("book", None, {"pk": "contact"}, book=True),
    "crm/contacts/<int:pk>/edit/": E("writer", "writer", {"pk": "contact"}, book=True),
    "crm/contacts/<int:pk>/history/": E("book", None, {"pk": "contact"}, book=True),
    "crm/contacts/<int:pk>/suitability/": E("book", "writer", {"pk": "contact"}, book=True),
    "crm/contacts/<int:pk>/log/": E("none", "writer", {"pk": "contact"}, book=True),
    "crm/contacts/<int:pk>/merge/": E("writer", "writer", {"pk": "contact"}, book=True),
    "crm/companies/": E("member"),
    "crm/companies/new/": E("writer", "writer"),
    "crm/companies/<int:pk>/": E("book", None, {"pk": "company"}, book=True),
    "crm/companies/<int:pk>/edit/": E("writer", "writer", {"pk": "company"}, book=True),
    "crm/companies/<int:pk>/merge/": E("writer", "writer", {"pk": "company"}, book=True),
    "crm/deals/": E("member"),
    "crm/deals/new/": E("writer", "writer"),
    "crm/deals/<int:pk>/": E("book", None, {"pk": "deal"}, book=True),
    "crm/deals/<int:pk>/edit/": E("writer", "writer", {"pk": "deal"}, book=True),
    "crm/deals/<int:pk>/move/": E("none", "writer", {"pk": "deal"}, book=True),
    "crm/pipeline/": E("member"),
    "crm/pipeline/stages/": E("member", "manager"),
    "crm/pipeline/stages/<int:pk>/": E("member", "manager", {"pk": "stage"}),
    "crm/tasks/": E("member"),
    "crm/tasks/<int:pk>/complete/": E("none", "writer", {"pk": "task"}, book=True),
    "crm/search/": E("member"),
    "crm/import/": E("writer", "writer"),
    "crm/import/<int:pk>/": E("writer", "writer", {"pk": "import_job"}, book=True),
    "crm/import/<int:pk>/commit/": E("none", "writer", {"pk": "import_job"}, book=True),
    "crm/import/<int:pk>/cancel/": E("none", "writer", {"pk": "import_job"}, book=True),
    "crm/^export/(?P<what>contacts|companies|deals)\\.csv$": E("member", None, {"what": "contacts"}),
    "crm/newsletter/": E("firm", "manager", refusal="form"),
    "crm/newsletter/subscribers/<int:pk>/unsubscribe/": E("none", "manager", {"pk": "subscriber"}),
    "crm/newsletter/campaigns/new/": E("firm", "manager"),
    "crm/newsletter/campaigns/<int:pk>/": E("firm", "manager", {"pk": "campaign"}),
    "crm/newsletter/campaigns/<int:pk>/send/": E("none", "manager", {"pk": "campaign"}),
    "crm/newsletter/subscribe/": E("public", "public"),
    "crm/newsletter/confirm/<str:token>/": E("public", "public", {"token": "x"}),
    "crm/newsletter/unsubscribe/<str:token>/": E("public", "public", {"token": "x"}),
    "billing/": E("member"),
    "billing/change/": E("manager", "manager", query="?plan=starter&interval=month"),
    "billing/cancel/": E("none", "manager"),
    "billing/reactivate/": E("none", "manager"),
    "billing/invoices/<int:pk>/": E("member", None, {"pk": "invoice"}),
    "fees/": E("member"),
    "fees/products/": E("member"),
    "fees/products/new/": E("manager", "manager"),
    "fees/products/<int:pk>/": E("member", "manager", {"pk": "product"}),
    "fees/schedules/new/": E("manager", "manager"),
    "fees/schedules/<int:pk>/": E("member", "manager", {"pk": "fee_schedule"}),
    "fees/groups/": E("member"),
    "fees/groups/new/": E("manager", "manager"),
    "fees/groups/<int:pk>/": E("book", "manager", {"pk": "billing_group"}, book=True),
    "fees/subscriptions/": E("member"),
    "fees/subscriptions/new/": E("manager", "manager"),
    "fees/subscriptions/<int:pk>/": E("book", "manager", {"pk": "client_subscription"}, book=True),
    "fees/invoices/": E("member"),
    "fees/invoices/<int:pk>/void/": E("book", "manager", {"pk": "fee_invoice"}, book=True),
    "fees/runs/": E("firm", "manager"),
    "fees/runs/<int:pk>/": E("firm", None, {"pk": "fee_run"}),
    "fees/runs/<int:pk>/approve/": E("none", "manager", {"pk": "fee_run"}),
    "fees/runs/<int:pk>/issue/": E("none", "manager", {"pk": "fee_run"}),
    "fees/revenue/": E("member"),
    "fees/revenue.csv": E("member"),
    "settings/webhooks/": E("manager", "manager"),
    "settings/webhooks/<int:pk>/": E("manager", "manager", {"pk": "webhook_endpoint"}),
    "settings/webhooks/<int:pk>/test/": E("none", "manager", {"pk": "webhook_endpoint"}),
    "settings/webhooks/<int:pk>/rotate/": E("none", "manager", {"pk": "webhook_endpoint"}),
    "settings/webhooks/<int:pk>/delete/": E("none", "manager", {"pk": "webhook_endpoint"}),
    "settings/webhooks/<int:pk>/deliveries/<int:delivery_pk>/replay/": E(
        "none", "manager", {"pk": "webhook_endpoint", "delivery_pk": "webhook_delivery"}
    ),
    # the client portal: the static app's shell (no data) and its client pages; the staff side
    "portal/": E("public"),
    "portal/<path:rest>": E("public", None, {"rest": "overview"}),
    "portal/invitation/<str:token>/": E("public", "public", {"token": "x"}),
    "portal/files/<str:token>/": E("signed", None, {"token": "x"}),
    "client-portal/clients/<int:pk>/": E("book", "writer", {"pk": "contact"}, book=True),
    "client-portal/clients/users/<int:pk>/end/": E("none", "writer", {"pk": "client_user"}, book=True),
    "client-portal/documents/<int:pk>/": E("book", None, {"pk": "document"}, book=True),
    "client-portal/documents/<int:pk>/visibility/": E("none", "writer", {"pk": "document"}, book=True),
    "client-portal/posts/": E("member", "manager"),
    "client-portal/reports/": E("member", "manager"),
}


@dataclass(frozen=True)
class A:
    """An API path: access per method, and the object kind of each path parameter."""

    methods: dict
    kinds: dict = field(default_factory=dict)
    book: bool = False


ID = "{id}"
RW = {"GET": "member", "POST": "writer"}  # list + create
OBJ = {"GET": "book", "PATCH": "writer", "DELETE": "writer"}  # detail in a book

API: dict[str, A] = {
    "/api/v1/portfolios/{portfolio_pk}/fee-returns/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/fee-revenue/": A({"GET": "member"}),
    "/api/v1/fee-revenue/export/": A({"GET": "member"}),
    "/api/v1/products/": A({"GET": "member", "POST": "manager"}),
    "/api/v1/products/{id}/": A({"GET": "member", "PATCH": "manager"}, {"id": "product"}),
    "/api/v1/fee-schedules/": A({"GET": "member", "POST": "manager"}),
    "/api/v1/fee-schedules/{id}/": A({"GET": "member", "PATCH": "manager"}, {"id": "fee_schedule"}),
    "/api/v1/fee-schedules/{id}/versions/": A({"POST": "manager"}, {"id": "fee_schedule"}),
    "/api/v1/billing-groups/": A({"GET": "member", "POST": "manager"}),
    "/api/v1/billing-groups/{id}/": A({"GET": "book", "PATCH": "manager"}, {"id": "billing_group"}, book=True),
    "/api/v1/client-subscriptions/": A({"GET": "member", "POST": "manager"}),
    "/api/v1/client-subscriptions/{id}/": A({"GET": "book"}, {"id": "client_subscription"}, book=True),
    "/api/v1/client-subscriptions/{id}/end/": A({"POST": "manager"}, {"id": "client_subscription"}, book=True),
    "/api/v1/fee-runs/": A({"GET": "firm", "POST": "manager"}),
    "/api/v1/fee-runs/{id}/": A({"GET": "firm"}, {"id": "fee_run"}),
    "/api/v1/fee-runs/{id}/approve/": A({"POST": "manager"}, {"id": "fee_run"}),
    "/api/v1/fee-runs/{id}/issue/": A({"POST": "manager"}, {"id": "fee_run"}),
    "/api/v1/fee-run-jobs/": A({"GET": "firm", "POST": "manager"}),
    "/api/v1/fee-run-jobs/{id}/": A({"GET": "firm"}, {"id": "fee_run_job"}),
    "/api/v1/fee-invoices/": A({"GET": "member"}),
    "/api/v1/fee-invoices/{id}/": A({"GET": "book"}, {"id": "fee_invoice"}, book=True),
    "/api/v1/fee-invoices/{id}/void/": A({"POST": "manager"}, {"id": "fee_invoice"}, book=True),
    "/api/v1/fee-invoices/{id}/credit-note/": A({"POST": "manager"}, {"id": "fee_invoice"}, book=True),
    "/api/v1/fee-invoices/{id}/mark-paid/": A({"POST": "manager"}, {"id": "fee_invoice"}, book=True),
    "/api/v1/fee-statements/": A({"GET": "member"}),
    "/api/v1/fee-statements/{id}/": A({"GET": "book"}, {"id": "fee_statement"}, book=True),
    "/api/v1/fee-statements/{id}/pdf/": A({"GET": "book"}, {"id": "fee_statement"}, book=True),
    "/api/v1/webhook-deliveries/{id}/replay/": A({"POST": "manager"}, {"id": "webhook_delivery"}),
    "/api/v1/webhook-endpoints/": A({"GET": "manager", "POST": "manager"}),
    "/api/v1/webhook-endpoints/{id}/": A(
        {"GET": "manager", "PATCH": "manager", "DELETE": "manager"}, {"id": "webhook_endpoint"}
    ),
    "/api/v1/webhook-endpoints/{id}/deliveries/": A({"GET": "manager"}, {"id": "webhook_endpoint"}),
    "/api/v1/webhook-endpoints/{id}/rotate-secret/": A({"POST": "manager"}, {"id": "webhook_endpoint"}),
    "/api/v1/webhook-endpoints/{id}/test/": A({"POST": "manager"}, {"id": "webhook_endpoint"}),
    "/api/v1/webhook-events/": A({"GET": "member"}),
    "/api/v1/webhook-events/{type}/": A({"GET": "member"}, {"type": "event_type"}),
    "/api/v1/activities/": A(RW),
    "/api/v1/activities/{id}/": A(OBJ, {"id": "activity"}, book=True),
    "/api/v1/activities/{id}/complete/": A({"POST": "writer"}, {"id": "task"}, book=True),
    "/api/v1/alerts/events/": A({"GET": "member"}),
    "/api/v1/alerts/events/{id}/": A({"GET": "member"}, {"id": "alert_event"}),
    "/api/v1/alerts/events/mark-read/": A({"POST": "self"}),
    "/api/v1/alerts/events/unread-count/": A({"GET": "member"}),
    # a member's own notices: anyone else (another member, a key) gets 404 or an empty list
    "/api/v1/notifications/": A({"GET": "member"}),
    "/api/v1/notifications/{id}/": A({"GET": "self"}, {"id": "notification"}),
    "/api/v1/notifications/live/": A({"GET": "member"}),
    "/api/v1/notifications/mark-read/": A({"POST": "self"}),
    "/api/v1/notifications/unread-count/": A({"GET": "member"}),
    "/api/v1/alerts/rules/": A(RW),
    "/api/v1/alerts/rules/{id}/": A({"GET": "member", "PATCH": "writer", "DELETE": "writer"}, {"id": "alert_rule"}),
    "/api/v1/api-keys/": A({"GET": "manager", "POST": "manager"}),
    "/api/v1/api-keys/{id}/revoke/": A({"POST": "manager"}, {"id": "api_key"}),
    "/api/v1/audit-events/": A({"GET": "owner"}),
    "/api/v1/auth/token/": A({"POST": "public"}),
    "/api/v1/auth/token/revoke/": A({"POST": "self"}),
    "/api/v1/billing/cancel/": A({"POST": "manager"}),
    "/api/v1/billing/invoices/": A({"GET": "member"}),
    "/api/v1/billing/invoices/{id}/": A({"GET": "member"}, {"id": "invoice"}),
    "/api/v1/billing/plan-change/": A({"GET": "member", "POST": "manager"}),  # GET: a read-only preview
    "/api/v1/billing/plans/": A({"GET": "member"}),
    "/api/v1/billing/reactivate/": A({"POST": "manager"}),
    "/api/v1/billing/subscription/": A({"GET": "member"}),
    "/api/v1/billing/usage/": A({"GET": "member"}),
    "/api/v1/clients/{id}/": A({"GET": "book"}, {"id": "contact"}, book=True),
    "/api/v1/companies/": A(RW),
    "/api/v1/companies/{id}/": A(OBJ, {"id": "company"}, book=True),
    "/api/v1/companies/{id}/merge/": A({"POST": "writer"}, {"id": "company"}, book=True),
    "/api/v1/companies/export/": A({"GET": "member"}),
    "/api/v1/contacts/": A(RW),
    "/api/v1/contacts/{id}/": A(OBJ, {"id": "contact"}, book=True),
    "/api/v1/contacts/{id}/merge/": A({"POST": "writer"}, {"id": "contact"}, book=True),
    "/api/v1/contacts/{id}/history/": A({"GET": "book"}, {"id": "contact"}, book=True),
    "/api/v1/contacts/{id}/suitability/": A({"GET": "book", "PATCH": "writer"}, {"id": "contact"}, book=True),
    "/api/v1/contacts/export/": A({"GET": "member"}),
    "/api/v1/deals/": A(RW),
    "/api/v1/deals/{id}/": A(OBJ, {"id": "deal"}, book=True),
    "/api/v1/deals/{id}/move/": A({"POST": "writer"}, {"id": "deal"}, book=True),
    "/api/v1/deals/export/": A({"GET": "member"}),
    "/api/v1/firm/exposure/": A({"GET": "member"}),
    "/api/v1/fx-rates/": A({"GET": "member"}),
    "/api/v1/fx-rates/{id}/": A({"GET": "member"}, {"id": "fx"}),
    "/api/v1/imports/": A(RW),
    "/api/v1/imports/{id}/": A({"GET": "book"}, {"id": "import_job"}, book=True),
    "/api/v1/imports/{id}/commit/": A({"POST": "writer"}, {"id": "import_job"}, book=True),
    "/api/v1/imports/{id}/preview/": A({"POST": "writer"}, {"id": "import_job"}, book=True),
    "/api/v1/instruments/": A(RW),
    "/api/v1/instruments/{id}/": A({"GET": "member", "PATCH": "writer", "PUT": "writer"}, {"id": "instrument"}),
    "/api/v1/instruments/{id}/prices/": A(RW, {"id": "instrument"}),
    "/api/v1/instruments/prices/import/": A({"POST": "writer"}),
    "/api/v1/market/feed-runs/": A({"GET": "member"}),
    "/api/v1/market/feed-runs/{id}/": A({"GET": "member"}, {"id": "feed_run"}),
    "/api/v1/me/": A({"GET": "member"}),
    "/api/v1/custodian/accounts/": A({"GET": "manager", "POST": "manager"}),
    "/api/v1/custodian/accounts/{id}/": A({"GET": "manager"}, {"id": "custodian_account"}),
    "/api/v1/custodian/mappings/": A({"GET": "manager", "POST": "manager"}),
    "/api/v1/custodian/mappings/{id}/": A({"GET": "manager"}, {"id": "custodian_mapping"}),
    "/api/v1/custodian/positions/import/": A({"POST": "manager"}),
    "/api/v1/custodian/transactions/import/": A({"POST": "manager"}),
    "/api/v1/firm/ledger-settings/": A({"GET": "member", "PATCH": "manager"}),
    "/api/v1/portfolios/{portfolio_pk}/custodian-import/": A(
        {"POST": "writer"}, {"portfolio_pk": "portfolio"}, book=True
    ),
    "/api/v1/reconciliation/runs/": A({"POST": "manager"}),
    "/api/v1/corporate-actions/": A({"GET": "member", "POST": "writer"}),
    "/api/v1/reconciliation/breaks/": A({"GET": "member"}),
    "/api/v1/reconciliation/breaks/{id}/": A({"GET": "book"}, {"id": "reconciliation_break"}, book=True),
    "/api/v1/reconciliation/breaks/{id}/resolve/": A({"POST": "writer"}, {"id": "reconciliation_break"}, book=True),
    "/api/v1/newsletter/campaigns/": A({"GET": "firm", "POST": "manager"}),
    "/api/v1/newsletter/campaigns/{id}/": A(
        {"GET": "firm", "PATCH": "manager", "DELETE": "manager"}, {"id": "campaign"}
    ),
    "/api/v1/newsletter/campaigns/{id}/send/": A({"POST": "manager"}, {"id": "campaign"}),
    "/api/v1/newsletter/subscribers/": A({"GET": "firm", "POST": "manager"}),
    "/api/v1/newsletter/subscribers/{id}/": A({"GET": "firm"}, {"id": "subscriber"}),
    "/api/v1/newsletter/subscribers/{id}/unsubscribe/": A({"POST": "manager"}, {"id": "subscriber"}),
    "/api/v1/pipeline-stages/": A({"GET": "member", "POST": "manager"}),
    "/api/v1/pipeline-stages/{id}/": A({"GET": "member", "PATCH": "manager"}, {"id": "stage"}),
    "/api/v1/portfolios/": A(RW),
    "/api/v1/portfolios/{id}/": A({**OBJ, "PUT": "writer"}, {"id": "portfolio"}, book=True),
    "/api/v1/portfolios/{id}/history/": A({"GET": "book"}, {"id": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/transactions/{id}/history/": A(
        {"GET": "book"}, {"portfolio_pk": "portfolio", "id": "transaction"}, book=True
    ),
    "/api/v1/portfolios/{portfolio_pk}/allocation/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/holdings/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/holdings/export/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/lots/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/performance/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/realised-gains/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/portfolios/{portfolio_pk}/transactions/": A(
        {"GET": "book", "POST": "writer"}, {"portfolio_pk": "portfolio"}, book=True
    ),
    "/api/v1/portfolios/{portfolio_pk}/transactions/{id}/": A(
        {**OBJ, "PUT": "writer"}, {"portfolio_pk": "portfolio", "id": "transaction"}, book=True
    ),
    "/api/v1/portfolios/{portfolio_pk}/transactions/export/": A(
        {"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True
    ),
    "/api/v1/portfolios/{portfolio_pk}/transactions/import/": A(
        {"POST": "writer"}, {"portfolio_pk": "portfolio"}, book=True
    ),
    "/api/v1/portfolios/{portfolio_pk}/value-series/": A({"GET": "book"}, {"portfolio_pk": "portfolio"}, book=True),
    "/api/v1/search/": A({"GET": "member"}),
    "/api/v1/tasks/": A({"GET": "member"}),
    "/api/v1/tenant/": A({"GET": "member"}),
    # the client portal's API: client users only (test_client_persona_matrix); everyone else 404
    "/api/v1/portal/me/": A({"GET": "client"}),
    "/api/v1/portal/overview/": A({"GET": "client"}),
    "/api/v1/portal/portfolios/{id}/": A({"GET": "client"}, {"id": "portfolio"}),
    "/api/v1/portal/portfolios/{id}/value-series/": A({"GET": "client"}, {"id": "portfolio"}),
    "/api/v1/portal/portfolios/{id}/transactions/": A({"GET": "client"}, {"id": "portfolio"}),
    "/api/v1/portal/portfolios/{id}/transactions/export/": A({"GET": "client"}, {"id": "portfolio"}),
    "/api/v1/portal/documents/": A({"GET": "client"}),
    "/api/v1/portal/documents/{id}/": A({"GET": "client"}, {"id": "document"}),
    "/api/v1/portal/fee-statements/{id}/": A({"GET": "client"}, {"id": "fee_statement"}),
    "/api/v1/portal/advisor/": A({"GET": "client"}),
    "/api/v1/portal/posts/": A({"GET": "client"}),
}
# API routes outside the generated schema (documentation itself, the JSON 404 fallback).
API_UNDOCUMENTED = {"api/v1/schema/", "api/v1/docs/", "api/v1/^.*$"}


# --- machinery --------------------------------------------------------------------------------------------
def _openapi() -> dict[str, set[str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf="codex.site.urls_tenant").get_schema(request=None, public=True)
    return {
        path: {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
        for path, item in schema["paths"].items()
    }


def _api_path(template: str, values: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def _to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _ok(response) -> bool:
    return 200 <= response.status_code < 400 and not _to_login(response)


def _denied(response) -> bool:
    return response.status_code in (403, 404)


def csp_problems(response, body: str) -> list[str]:
    """What on an HTML page our CSP (no unsafe-inline) would block, or a missing security header."""
    problems = []
    csp = response.get("Content-Security-Policy", "")
    if "default-src 'self'" not in csp or "unsafe-inline" in csp:
        problems.append("CSP header missing or weakened")
    if "<style" in body:
        problems.append("inline <style> (blocked by the CSP)")
    if re.search(r"<[a-z][^>]*\sstyle\s*=", body):
        problems.append("style attribute (blocked by the CSP)")
    if re.search(r"<[a-z][^>]*\son[a-z]+\s*=", body):
        problems.append("inline event handler (blocked by the CSP)")
    problems += [
        f"script without nonce: {tag[:80]}" for tag in re.findall(r"<script\b[^>]*>", body) if "nonce=" not in tag
    ]
    if response.get("X-Frame-Options") != "DENY" or "Permissions-Policy" not in response:
        problems.append("frame or permissions header missing")
    return problems


class Matrix:
    """Clients for every persona, the planted ids, and a list of violations."""

    def __init__(self, firm, other_firm, users, api_key_for):
        market = world.shared_market()
        self.acme = world.plant(firm, ACME, users["advisor2"], market)
        self.globex = world.plant(other_firm, GLOBEX, users["outsider"], market)
        self.violations: list[str] = []
        self.firm = firm

        def signed_in(user, tenant):
            client = FirmClient(tenant, raise_request_exception=False)
            if user is not None:
                client.force_login(user)
            return client

        self.clients = {name: signed_in(users[name], firm) for name in ("owner", "advisor", "viewer")}
        self.clients["anon"] = signed_in(None, firm)
        # globex's owner, signed in at globex; their cookie presented at acme's host
        globex_home = signed_in(users["outsider"], other_firm)
        self.globex_home = globex_home
        cross = FirmClient(firm, raise_request_exception=False)
        cross.cookies = globex_home.cookies
        self.clients["globex_session"] = cross
        self.acme_read_key = api_key_for(firm, "read")
        self.acme_write_key = api_key_for(firm, "write")
        self.globex_key = api_key_for(other_firm, "write")
        token = FirmClient(other_firm).post(
            "/api/v1/auth/token/", {"email": "owner@globex.test", "password": PASSWORD}, content_type="application/json"
        )
        self.globex_bearer = token.json()["access"]
        self.api_host = FirmClient(firm, host="api.localhost", raise_request_exception=False)
        connection.set_tenant(firm)

    def call(self, who: str, method: str, path: str, **extra):
        client = self.clients.get(who) or self.clients["anon"]
        if who == "acme_read_key":
            extra["HTTP_X_API_KEY"] = self.acme_read_key
        elif who == "acme_write_key":
            extra["HTTP_X_API_KEY"] = self.acme_write_key
        elif who == "globex_key":
            extra["HTTP_X_API_KEY"] = self.globex_key
        elif who == "globex_bearer":
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.globex_bearer}"
        if method in ("POST", "PUT", "PATCH") and path.startswith("/api/"):
            extra.setdefault("content_type", "application/json")
            data = {}
        else:
            data = {"x": "1"} if method == "POST" else None
        response = (
            getattr(client, method.lower())(path, data, **extra)
            if data is not None
            else getattr(client, method.lower())(path, **extra)
        )
        body = _body(response)
        if response.status_code >= 500:
            self.flag(who, method, path, f"server error {response.status_code}")
        if GLOBEX in body:
            self.flag(who, method, path, "shows another firm's data (GLOBEXSECRET)")
        if method == "GET" and response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            for problem in csp_problems(response, body):
                self.flag(who, method, path, problem)
        if who in ("globex_session", "globex_key", "globex_bearer", "anon") and ACME in body:
            self.flag(who, method, path, "shows the firm's data to a stranger (ACMEPRIVATE)")
        if who == "advisor" and ACME in body.replace(ACME_FIRMWIDE, ""):
            self.flag(who, method, path, "shows another advisor's book (ACMEPRIVATE)")
        connection.set_tenant(self.firm)
        return response

    def expect(self, condition: bool, who: str, method: str, path: str, response, what: str) -> None:
        if not condition:
            self.flag(who, method, path, f"expected {what}, got {response.status_code}")

    def flag(self, who, method, path, message) -> None:
        self.violations.append(f"{who:15} {method:6} {path}: {message}")


@pytest.fixture
def matrix(firm, other_firm, owner, advisor, advisor2, viewer, outsider, api_key_for, settings):
    settings.CODEX_FORM_RATES = dict.fromkeys(settings.CODEX_FORM_RATES, "100000/min")
    settings.CODEX_PLAN_RATE_MULTIPLIERS = {"pro": 1000.0}
    cache.clear()
    users = {"owner": owner, "advisor": advisor, "advisor2": advisor2, "viewer": viewer, "outsider": outsider}
    return Matrix(firm, other_firm, users, api_key_for)


# --- the tests ----------------------------------------------------------------------------------------------
def test_every_route_is_in_the_matrix():
    from django.urls import Resolver404, resolve

    missing = []
    page_routes = [r for r in routes("codex.site.urls_tenant") if not r.pattern.startswith("api/")]
    missing += [f"page {r.pattern}" for r in page_routes if r.pattern not in PAGES]
    operations = _openapi()
    missing += [f"api {p}" for p in operations if p not in API]
    missing += [f"api {p} {m}" for p, ms in operations.items() if p in API for m in ms - set(API[p].methods)]
    # every API route of the URLconf is reached by a documented path (or is knowingly undocumented)
    covered = set()
    for template in operations:
        try:
            match = resolve(
                _api_path(template, {"id": 1, "portfolio_pk": 1, "type": "contact.created"}),
                urlconf="codex.site.urls_tenant",
            )
        except Resolver404:
            missing.append(f"api {template} does not resolve")
            continue
        covered.add(match.route)
    for route in routes("codex.site.urls_tenant"):
        documented = {c.replace("^", "") for c in covered}
        if (
            route.pattern.startswith("api/")
            and route.pattern not in API_UNDOCUMENTED
            and route.pattern.replace("^", "") not in documented
        ):
            missing.append(f"api route {route.pattern} is not in the OpenAPI schema")
    stale = [p for p in PAGES if p not in {r.pattern for r in page_routes}] + [p for p in API if p not in operations]
    assert not missing, "add these to tests/security/test_isolation_matrix.py: " + ", ".join(missing)
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


def _page_get_expectation(level: str, who: str, book: bool) -> tuple:
    if level == "public":
        return (lambda r: r.status_code < 500 and not _to_login(r)), "an answer without sign-in"
    if level == "signed":
        # a signed download: sign in first; a signed-in caller with a bad token gets 404
        if who in ("anon", "globex_session"):
            return _to_login, "a redirect to sign in"
        return (lambda r: r.status_code == 404), "404"
    if level == "none":
        if who in ("anon", "globex_session"):
            return (lambda r: _to_login(r) or r.status_code == 405), "sign-in or 405"
        return (lambda r: r.status_code == 405), "405"
    if who in ("anon", "globex_session"):
        return _to_login, "a redirect to sign in"
    allowed = {
        "owner": True,
        "advisor": level in ("member",) or (level in ("book", "writer") and not book),
        "viewer": level in ("member", "book", "firm"),
    }[who]
    return (_ok, "access") if allowed else (_denied, "403/404")


def test_pages_get_matrix(matrix):
    for pattern, entry in PAGES.items():
        path = "/" + pattern if "<" not in pattern and "(?P" not in pattern else None
        if path is None:
            from tests.security.urlwalk import Route

            path = Route(pattern, "", None).path(**entry.values(matrix.acme))
        path += entry.query
        for who in ("owner", "advisor", "viewer", "anon", "globex_session"):
            response = matrix.call(who, "GET", path)
            check, what = _page_get_expectation(entry.get, who, entry.book)
            matrix.expect(check(response), who, "GET", path, response, what)
    assert not matrix.violations, "\n" + "\n".join(matrix.violations)


def test_owner_sees_the_markers_so_the_matrix_can_fail(matrix):
    acme = matrix.acme
    for path in (
        f"/portfolios/{acme['portfolio']}/",
        f"/crm/contacts/{acme['contact']}/",
        f"/crm/deals/{acme['deal']}/",
        f"/crm/companies/{acme['company']}/",
        f"/api/v1/portfolios/{acme['portfolio']}/",
        f"/api/v1/contacts/{acme['contact']}/",
    ):
        response = matrix.call("owner", "GET", path)
        assert response.status_code == 200 and ACME in _body(response), path
    response = matrix.globex_home.get(f"/crm/contacts/{matrix.globex['contact']}/")
    assert GLOBEX in _body(response)


def test_pages_writes_by_viewers_advisors_outside_the_book_and_strangers_are_refused(matrix):
    for pattern, entry in PAGES.items():
        if entry.post in (None, "public", "self"):
            continue
        from tests.security.urlwalk import Route

        path = Route(pattern, "", None).path(**entry.values(matrix.acme))
        refusers = ["viewer", "anon", "globex_session"]
        if entry.post in ("manager", "owner") or entry.book:
            refusers.append("advisor")
        for who in refusers:
            response = matrix.call(who, "POST", path)
            if who in ("anon", "globex_session"):
                matrix.expect(
                    _to_login(response) or response.status_code == 403, who, "POST", path, response, "sign-in"
                )
            elif entry.refusal == "redirect" and who == "viewer":
                matrix.expect(response.status_code == 302, who, "POST", path, response, "a redirect with the refusal")
            elif entry.refusal == "form" and who == "viewer":
                matrix.expect(
                    response.status_code in (200, 400), who, "POST", path, response, "the form with the refusal"
                )
            else:
                matrix.expect(response.status_code in (403, 404, 405), who, "POST", path, response, "403/404")
    assert not matrix.violations, "\n" + "\n".join(matrix.violations)


def _api_expectation(level: str, who: str, method: str, book: bool) -> tuple:
    if who in ("anon", "globex_key", "globex_bearer", "globex_session"):
        if level == "public":
            return (lambda r: r.status_code < 500), "an answer"
        return (lambda r: r.status_code in (401, 403)), "401"
    if level in ("self", "public"):
        return (lambda r: r.status_code < 500), "an answer"
    if level == "client":
        return (lambda r: r.status_code in (403, 404)), "403/404"
    reads = method == "GET"
    allowed = {
        "owner": level != "none",
        "advisor": level in ("member", "writer") or (level == "book" and not book) or (level == "self"),
        "viewer": reads and level in ("member", "book", "firm"),
        "acme_read_key": reads and level in ("member", "book", "firm"),
        "acme_write_key": level in ("member", "book", "firm", "writer"),
    }[who]
    if who == "advisor" and book and level in ("book", "writer"):
        allowed = False
    if allowed:
        # the caller passed the access checks; an empty body may still be invalid (400) or conflict
        return (lambda r: r.status_code < 500 and r.status_code not in (401, 403)), "access"
    if level == "firm" and reads and who == "advisor":
        # the firm's mailing list and campaigns are refused to advisors, as on the newsletter page
        return (lambda r: r.status_code == 403), "403/404"
    if not reads and level in ("manager", "firm") and who in ("advisor", "viewer", "acme_read_key"):
        # some write endpoints validate the body before the service refuses the role: an empty body
        # is then a 400; test_refused_roles_with_valid_data_change_nothing sends valid bodies
        return (lambda r: r.status_code in (400, 403, 404)), "403/404"
    return (lambda r: r.status_code in (403, 404)), "403/404"


def test_api_matrix(matrix):
    operations = _openapi()
    for template, entry in API.items():
        path = _api_path(template, {p: matrix.acme[k] for p, k in entry.kinds.items()})
        for method in sorted(operations.get(template, ())):
            level = entry.methods[method]
            personas = ["owner", "advisor", "viewer", "acme_read_key", "anon", "globex_key", "globex_bearer"]
            if method != "GET":
                # writes that would succeed are not sent (they would change the planted world), nor
                # a member's writes to their own account (revoking one's tokens ends the session)
                personas = [
                    p
                    for p in personas
                    if _api_expectation(level, p, method, entry.book)[1] == "403/404"
                    or p in ("anon", "globex_key", "globex_bearer")
                ]
            for who in personas:
                response = matrix.call(who, method, path)
                check, what = _api_expectation(level, who, method, entry.book)
                matrix.expect(check(response), who, method, path, response, what)
            # another firm's key on the API host with acme's ids: its own firm's rows or nothing
            matrix.call("globex_key", method, path) if method == "GET" else None
            response = (
                matrix.api_host.generic(
                    method,
                    path,
                    b"{}" if method != "GET" else b"",
                    content_type="application/json",
                    HTTP_X_API_KEY=matrix.globex_key,
                )
                if method == "GET"
                else None
            )
            if response is not None:
                body = _body(response)
                if ACME in body:
                    matrix.flag("globex@api", method, path, "shows the other firm's data (ACMEPRIVATE)")
                if response.status_code >= 500:
                    matrix.flag("globex@api", method, path, f"server error {response.status_code}")
            connection.set_tenant(matrix.firm)
    assert not matrix.violations, "\n" + "\n".join(matrix.violations)


def test_refused_roles_with_valid_data_change_nothing(matrix, firm, advisor, viewer, client_for):
    """Where a refusal is not a plain 403 (form redisplayed, redirect, or body validated first),
    valid data proves the write is refused all the same."""
    from crm.models import Campaign, PipelineStage, Subscriber
    from portfolios.alerts.models import AlertRule

    before = (Subscriber.objects.count(), Campaign.objects.count(), PipelineStage.objects.count())
    rules = AlertRule.objects.count()
    writes = [
        ("advisor", "/api/v1/newsletter/subscribers/", {"email": "valid-new@reader.test"}),
        ("advisor", "/api/v1/newsletter/campaigns/", {"subject": "Hello", "body": "Text"}),
        ("advisor", "/api/v1/pipeline-stages/", {"name": "New stage", "position": 9, "kind": "open"}),
        ("viewer", "/api/v1/newsletter/subscribers/", {"email": "valid-new2@reader.test"}),
    ]
    for who, path, data in writes:
        response = matrix.clients[who].post(path, data, content_type="application/json")
        assert response.status_code == 403, (who, path, response.status_code, response.content[:200])
    page = matrix.clients["viewer"].post("/crm/newsletter/", {"email": "valid-new3@reader.test"})
    assert page.status_code in (200, 400)
    alert = matrix.clients["viewer"].post(
        "/portfolios/alerts/", {"kind": "price_above", "instrument": matrix.acme["instrument"], "threshold": "5"}
    )
    assert alert.status_code == 302
    connection.set_tenant(firm)
    assert (Subscriber.objects.count(), Campaign.objects.count(), PipelineStage.objects.count()) == before
    assert AlertRule.objects.count() == rules


def test_streamed_exports_run_in_the_callers_firm(matrix, firm):
    """A CSV export streams after the routing middleware has returned; it must still read the
    caller's firm (it read whichever schema the connection was left in before the fix)."""
    for path in ("/api/v1/contacts/export/", "/api/v1/deals/export/", "/api/v1/companies/export/"):
        response = matrix.api_host.get(path, HTTP_X_API_KEY=matrix.globex_key)
        body = _body(response)
        assert response.status_code == 200 and GLOBEX in body and ACME not in body, path
        connection.set_tenant(firm)


# --- the public host (base domain): the site, sign-up, the operators' console ----------------------------
# GET for an anonymous visitor: "open" (answers, no sign-in), "signin" (sends to the operators'
# sign-in), "none" (no GET: 405), "hidden" (404 unless authorised, e.g. metrics without its token).
PUBLIC: dict[str, str] = {
    "health": "open",
    "ready": "open",
    "metrics": "hidden",
    "": "open",
    "signup/": "open",
    "pricing/": "open",
    "status/": "open",
    "find-your-firm/": "open",
    "theme/": "none",
    "favicon.ico": "open",
    "accounts/security/": "signin",
    "accounts/security/2fa/setup/": "signin",
    "accounts/security/2fa/verify/": "signin",
    "accounts/security/recovery-codes/": "signin",
    "accounts/security/2fa/disable/": "signin",
    "accounts/security/sign-out-everywhere/": "signin",
    ".well-known/security.txt": "open",
    "billing/webhooks/stripe/": "none",
}


def test_public_host_matrix(matrix, public_client):
    """Every route of the public URLconf is registered; none shows a firm's data to a visitor; the
    operators' console (every admin URL) sends a visitor or a firm user to the operators' sign-in."""
    # a visitor from the internet (the development defaults trust 127.0.0.1 for /metrics)
    anon = FirmClient(matrix.firm, host="localhost", raise_request_exception=False, REMOTE_ADDR="203.0.113.5")
    problems = []
    for route in routes("codex.site.urls_public"):
        if route.pattern in ("admin/login/", "admin/logout/"):
            continue  # the sign-in page itself, and signing out (nothing to protect)
        if route.pattern.startswith("admin/"):
            path = route.path(object_id=1, app_label="tenants", content_type_id=1)
            response = anon.get(path)
            if (
                not (response.status_code == 302 and "/admin/login/" in response["Location"])
                and response.status_code != 404
            ):
                problems.append(f"{path}: the console answered a visitor with {response.status_code}")
            continue
        level = PUBLIC.get(route.pattern)
        if level is None:
            problems.append(f"public route {route.pattern} has no entry in PUBLIC")
            continue
        response = anon.get(route.path())
        body = _body(response)
        status = response.status_code
        ok = {
            "open": status == 200,
            "signin": status == 302 and response["Location"].startswith("/admin/login/"),
            "none": status == 405,
            "hidden": status == 404,
        }[level]
        if not ok:
            problems.append(f"{route.pattern}: expected {level}, got {status}")
        if ACME in body or GLOBEX in body:
            problems.append(f"{route.pattern}: shows a firm's data to a visitor")
        if status == 200 and "text/html" in response.get("Content-Type", ""):
            problems += [f"{route.pattern}: {p}" for p in csp_problems(response, body)]
        connection.set_tenant(matrix.firm)
    # a firm's owner signed in at their firm is nobody at the public host
    firm_owner_cookie = FirmClient(matrix.firm, host="localhost", raise_request_exception=False)
    firm_owner_cookie.cookies = matrix.clients["owner"].cookies
    response = firm_owner_cookie.get("/admin/")
    if not (response.status_code == 302 and "/admin/login/" in response["Location"]):
        problems.append(f"a firm user's cookie opened the console: {response.status_code}")
    assert not problems, "\n".join(problems)


# --- the client persona (issue 22): a client user reaches the portal only, and only their own ---------------
CLIENT_PAGES_OPEN = {
    "",  # sends a client user to /portal/
    "health",
    "ready",
    "brand.css",
    "theme/",
    "favicon.ico",
    "portal/",
    "portal/<path:rest>",
    "portal/invitation/<str:token>/",
    "portal/files/<str:token>/",
    "accounts/login/",
    "accounts/logout/",
    "accounts/logout/everywhere/",
    "accounts/password/change/",
    "accounts/password/change/done/",
}


def _client_persona(firm, contact_marker: str):
    """A client user of ``firm`` bound to a contact of their own (not a planted object)."""
    from crm.models import Contact
    from portal.models import ClientAccess
    from tenants.accounts.models import Role, User

    connection.set_tenant(firm)
    email = f"{contact_marker}.persona@client.test"
    user = User.objects.filter(email=email).first() or User.objects.create_user(email, PASSWORD, role=Role.CLIENT)
    contact = Contact.objects.create(first_name=contact_marker, last_name="Persona", lifecycle="client")
    ClientAccess.objects.update_or_create(user=user, defaults={"contact": contact})
    client = FirmClient(firm, raise_request_exception=False)
    client.force_login(user)
    connection.set_tenant(firm)
    return client


def test_client_persona_matrix(matrix, firm, other_firm):
    """Another client of the same firm, and a client of another firm, get 404 (or sign-in) on
    everything: every staff page and API operation, and the portal's objects of the planted client;
    the planted client's own user reaches them (so the check can fail)."""
    from tests.security.urlwalk import Route

    other_client = _client_persona(firm, "otherclient")
    globex_client_home = _client_persona(other_firm, "globexclient")
    globex_client = FirmClient(firm, raise_request_exception=False)
    globex_client.cookies = globex_client_home.cookies
    connection.set_tenant(firm)
    problems = []
    for pattern, entry in PAGES.items():
        path = Route(pattern, "", None).path(**entry.values(matrix.acme)) + entry.query
        response = other_client.get(path)
        body = _body(response)
        if ACME in body.replace(ACME_FIRMWIDE, "") or GLOBEX in body:
            problems.append(f"client GET {path}: shows another client's data")
        if pattern in CLIENT_PAGES_OPEN or pattern.startswith("accounts/security/"):
            if response.status_code >= 500:
                problems.append(f"client GET {path}: {response.status_code}")
        elif response.status_code != 404:
            problems.append(f"client GET {path}: expected 404, got {response.status_code}")
        connection.set_tenant(firm)
    operations = _openapi()
    for template, entry in API.items():
        path = _api_path(template, {p: matrix.acme[k] for p, k in entry.kinds.items()})
        for method in sorted(operations.get(template, ())):
            for who, client in (("client", other_client), ("globex_client", globex_client)):
                response = client.generic(
                    method, path, b"{}" if method != "GET" else b"", content_type="application/json"
                )
                body = _body(response)
                if ACME in body.replace(ACME_FIRMWIDE, "") or GLOBEX in body:
                    problems.append(f"{who} {method} {path}: shows another client's data")
                open_ = template.startswith("/api/v1/portal/") and not entry.kinds and who == "client"
                if who == "globex_client":
                    ok = response.status_code in (401, 403) or (
                        template == "/api/v1/auth/token/" and response.status_code == 400
                    )
                elif open_:
                    ok = response.status_code == 200
                elif template in ("/api/v1/auth/token/",):
                    ok = response.status_code in (400, 401, 403, 404)
                else:
                    ok = response.status_code == 404
                if not ok:
                    problems.append(f"{who} {method} {path}: got {response.status_code}")
                connection.set_tenant(firm)
    # the planted client's own user sees the planted portfolio and document
    from tenants.accounts.models import User

    owner_of_data = FirmClient(firm, raise_request_exception=False)
    owner_of_data.force_login(User.objects.get(email=f"{ACME.lower()}.client@client.test"))
    connection.set_tenant(firm)
    for path in (
        f"/api/v1/portal/portfolios/{matrix.acme['portfolio']}/",
        f"/api/v1/portal/documents/{matrix.acme['document']}/",
        f"/api/v1/portal/fee-statements/{matrix.acme['fee_statement']}/",
    ):
        response = owner_of_data.get(path)
        if response.status_code != 200 or ACME not in _body(response):
            problems.append(f"the planted client cannot read {path}: {response.status_code}")
        connection.set_tenant(firm)
    assert not problems, "\n".join(problems)
