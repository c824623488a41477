from django.conf import settings

from codex.notifications.live import stream_url_for
from codex.notifications.selectors import notifications_unread_count


def codex(request):
    return {
        "tenant": getattr(request, "tenant", None),
        "base_domain": settings.CODEX_BASE_DOMAIN,
    }


def live(request):
    """The bell's unread count and the page's live-stream URL, computed only when a template asks
    (signed-in members on a firm's host; the public site never reads them)."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated

    def unread() -> int:
        return notifications_unread_count(user=user) if signed_in else 0

    def stream_url() -> str:
        return stream_url_for(user) if signed_in else ""

    return {
        "notifications_unread": unread,
        "live_stream_url": stream_url,
        "live_poll_seconds": settings.LIVE_POLL_SECONDS,
    }
