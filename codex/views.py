from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def home(request):
    return render(request, "home.html")


def api_not_found(request, exception=None):
    from codex.api.errors import api_error_response

    return api_error_response(404, "not_found", "Not found.")


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return render(request, "404.html", status=404)


def handler500(request):
    if request.path.startswith("/api/"):
        from codex.api.errors import api_error_response

        return api_error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return render(request, "500.html", status=500)


def handler403(request, exception=None):
    if request.path.startswith("/api/"):
        from codex.api.errors import api_error_response

        return api_error_response(403, "permission_denied", str(exception) or "Permission denied.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def handler400(request, exception=None):
    if request.path.startswith("/api/"):
        from codex.api.errors import api_error_response

        return api_error_response(400, "bad_request", "Bad request.")
    return render(request, "400.html", status=400)
