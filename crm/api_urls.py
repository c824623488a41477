"""CRM routes under /api/v1/ (namespace ``api``: ``api:contact-list``, ``api:client-detail``...)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import suitability_api
from .api import activities, companies, contacts, deals, imports, record, search
from .newsletter import api as newsletter_api

router = SimpleRouter()
router.register("contacts", contacts.ContactViewSet, basename="contact")
router.register("companies", companies.CompanyViewSet, basename="company")
router.register("deals", deals.DealViewSet, basename="deal")
router.register("activities", activities.ActivityViewSet, basename="activity")
router.register("tasks", activities.TaskViewSet, basename="task")
router.register("pipeline-stages", deals.PipelineStageViewSet, basename="pipeline-stage")
router.register("newsletter/subscribers", newsletter_api.SubscriberViewSet, basename="subscriber")
router.register("newsletter/campaigns", newsletter_api.CampaignViewSet, basename="campaign")
router.register("imports", imports.ImportViewSet, basename="import")

urlpatterns = [
    path("search/", search.SearchView.as_view(), name="search"),
    path("clients/<int:pk>/", record.ClientRecordView.as_view(), name="client-detail"),
    path("contacts/<int:pk>/suitability/", suitability_api.SuitabilityView.as_view(), name="contact-suitability"),
    *router.urls,
]
