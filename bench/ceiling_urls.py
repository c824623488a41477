from django.http import JsonResponse
from django.urls import path

from bench.ceiling_views import firm_rows, ping


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health),
    path("bench/ping/", ping),
    path("bench/rows/", firm_rows),
]
