"""Pages under /settings/webhooks/ (namespace ``webhooks``)."""

from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("<int:pk>/", views.endpoint_detail, name="detail"),
    path("<int:pk>/test/", views.endpoint_test, name="test"),
    path("<int:pk>/rotate/", views.endpoint_rotate, name="rotate"),
    path("<int:pk>/delete/", views.endpoint_delete_view, name="delete"),
    path("<int:pk>/deliveries/<int:delivery_pk>/replay/", views.delivery_replay_view, name="replay"),
]
