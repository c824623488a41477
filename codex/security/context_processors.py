from datetime import UTC, datetime


def security(request):
    """``support_session`` (with ``ends_at``) for the banner shown on every page of a support session."""
    info = getattr(request, "support_session", None)
    if info:
        info = {**info, "ends_at": datetime.fromtimestamp(info["expires"], tz=UTC)}
    return {"support_session": info}
