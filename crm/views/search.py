"""The search page: contacts, companies and deals, and what apps above crm register (portfolios,
instruments)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .. import selectors

# --- search -----------------------------------------------------------------------------------------


@login_required
def search(request):
    q = request.GET.get("q", "").strip()
    hits = selectors.global_search(request.user, q, 50) if q else []
    return render(request, "crm/search.html", {"q": q, "hits": hits})
