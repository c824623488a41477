"""Portal routes on a firm's host: the client's side under /portal/, the staff side under
/client-portal/ (included at the root by the firm's URLconf)."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("portal/", views.app, name="app"),
    path("portal/invitation/<str:token>/", views.accept_invitation, name="accept-invitation"),
    path("portal/files/<str:token>/", views.download, name="download"),
    path("portal/<path:rest>", views.app, name="app-route"),
    path("client-portal/clients/<int:pk>/", views.client_page, name="client"),
    path("client-portal/clients/users/<int:pk>/end/", views.end_client_access, name="end-access"),
    path("client-portal/documents/<int:pk>/", views.document_open, name="document"),
    path("client-portal/documents/<int:pk>/visibility/", views.document_visibility, name="document-visibility"),
    path("client-portal/posts/", views.posts, name="posts"),
    path("client-portal/reports/", views.report_runs, name="reports"),
]
