"""What a signed-in member's page needs to hold a live stream: the URL with a fresh token."""

from __future__ import annotations

from django.conf import settings

from codex.db import current_schema
from codex.live.tokens import stream_token_for


def stream_url_for(user) -> str:
    """The stream URL for ``user`` in the current firm ("" for a caller without a user)."""
    if getattr(user, "pk", None) is None:
        return ""
    token = stream_token_for(schema=current_schema(), user_id=user.pk)
    return f"{settings.LIVE_STREAM_URL}?token={token}"
