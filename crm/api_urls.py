"""CRM routes under /api/v1/ (namespace ``api``: ``api:contact-list``, ``api:client-detail``...)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, suitability_api

router = SimpleRouter()
router.register("contacts", api.ContactViewSet, basename="contact")
router.register("companies", api.CompanyViewSet, basename="company")
router.register("deals", api.DealViewSet, basename="deal")
router.register("activities", api.ActivityViewSet, basename="activity")
router.register("tasks", api.TaskViewSet, basename="task")
router.register("pipeline-stages", api.PipelineStageViewSet, basename="pipeline-stage")
router.register("newsletter/subscribers", api.SubscriberViewSet, basename="subscriber")
router.register("newsletter/campaigns", api.CampaignViewSet, basename="campaign")
router.register("imports", api.ImportViewSet, basename="import")

urlpatterns = [
    path("search/", api.SearchView.as_view(), name="search"),
    path("clients/<int:pk>/", api.ClientRecordView.as_view(), name="client-detail"),
    path("contacts/<int:pk>/suitability/", suitability_api.SuitabilityView.as_view(), name="contact-suitability"),
    *router.urls,
]
