"""The stream token: who may listen to which channels, signed, short-lived.

A page rendered for a signed-in member (session auth, in the firm's schema) mints a token naming the
firm's schema and the user; the stream server (no database) trusts only what the signature covers.
A token of one firm names only that firm's channels, so a stream can never carry another firm's
events, whatever host it is opened on. The stream ends when its token expires; the page then asks
for a fresh one (which a signed-out or deactivated user no longer gets).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "codex.live.stream"


class BadStreamToken(Exception):
    """The token is missing, forged, malformed or expired."""


@dataclass(frozen=True)
class StreamGrant:
    schema: str
    user_id: int
    expires_at: float  # seconds since the epoch


def stream_token_for(*, schema: str, user_id: int) -> str:
    return signing.dumps({"s": schema, "u": int(user_id), "t": int(time.time())}, salt=SALT)


def stream_token_verify(token: str, *, max_age: int | None = None) -> StreamGrant:
    """Return the grant, or raise ``BadStreamToken`` (no database access: safe in async code)."""
    if not token:
        raise BadStreamToken("no token")
    max_age = int(settings.LIVE_TOKEN_MAX_AGE) if max_age is None else max_age
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadStreamToken("expired") from exc
    except signing.BadSignature as exc:
        raise BadStreamToken("bad signature") from exc
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("s"), str)
        and isinstance(payload.get("u"), int)
        and isinstance(payload.get("t"), int)
    ):
        raise BadStreamToken("malformed")
    return StreamGrant(schema=payload["s"], user_id=payload["u"], expires_at=payload["t"] + max_age)
