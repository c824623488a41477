"""The search page: contacts, companies and deals, and what apps above crm register (portfolios,
instruments)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .. import selectors

# --- search -----------------------------------------------------------------------------------------

SEARCH_PER_PAGE = 25
SEARCH_MAX_PAGES = 20  # 500 hits: past that, a narrower search is the answer (decision 1280)


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return min(max(number, 1), SEARCH_MAX_PAGES)


@login_required
def search(request):
    """Ranked hits, 25 a page (``?q=…&page=N``, a shareable URL). Each kind is asked for the hits up
    to the end of the page and one more, so the page's queries do not depend on the number of hits
    and the ranking is the same as on one long list; there is no total, only previous and next."""
    q = request.GET.get("q", "").strip()
    number = _page_number(request.GET.get("page"))
    start, end = (number - 1) * SEARCH_PER_PAGE, number * SEARCH_PER_PAGE
    found = selectors.global_search(request.user, q, end + 1) if q else []
    hits = found[start:end]
    return render(
        request,
        "crm/search.html",
        {
            "q": q,
            "hits": hits,
            "page_number": number,
            "first_index": start + 1,
            "last_index": start + len(hits),
            "has_previous": number > 1,
            "has_next": len(found) > end and number < SEARCH_MAX_PAGES,
            "past_the_end": bool(q) and not hits and bool(found),
        },
    )
