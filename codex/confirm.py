"""Confirmation step for destructive actions that works without JavaScript.

A destructive form posts to its view; the view first asks::

    if (response := confirmation_required(request, title="Revoke this key?", message=..., label="Revoke",
                                          cancel_url=reverse("accounts:api-keys"))):
        return response

Without ``confirmed=yes`` in the POST, that renders a confirmation page whose form re-posts the same
fields plus ``confirmed=yes``; nothing is changed until then. With JavaScript, ``static/js/codex.js``
asks ``window.confirm`` on forms marked ``data-confirm="..."`` and adds ``confirmed=yes`` itself, so
the page is skipped.
"""

from __future__ import annotations

from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

CONFIRM_FIELD = "confirmed"


def is_confirmed(request) -> bool:
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes"


def confirmation_required(request, *, title: str, message: str, label: str, cancel_url: str):
    """None when the POST is confirmed; otherwise the confirmation page (HTTP 200) to return."""
    if is_confirmed(request):
        return None
    if not url_has_allowed_host_and_scheme(cancel_url, allowed_hosts={request.get_host()}):
        cancel_url = "/"
    fields = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in {"csrfmiddlewaretoken", CONFIRM_FIELD}
        for value in values
    ]
    context = {
        "confirm_title": title,
        "confirm_message": message,
        "confirm_label": label,
        "confirm_action": request.get_full_path(),
        "confirm_fields": fields,
        "cancel_url": cancel_url,
    }
    return render(request, "includes/confirm.html", context)
