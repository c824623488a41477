from django.conf import settings


def codex(request):
    return {
        "tenant": getattr(request, "tenant", None),
        "base_domain": settings.CODEX_BASE_DOMAIN,
    }
