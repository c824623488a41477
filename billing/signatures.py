"""Stripe-compatible webhook signatures: ``t=<unix seconds>,v1=<hex hmac>[,v1=...]``.

Pure module: no Django import. The signature is HMAC-SHA256, keyed with the endpoint secret,
over ``b"<t>." + raw request body``; the hex digest goes in a ``v1`` entry. A header may carry
several ``v1`` entries (the sender signs with every active secret while a secret is being
rolled); the receiver may also hold several secrets during its own rotation. The payload is
verified if any ``v1`` entry matches any secret. Details and examples in docs/billing.md,
"Webhook signatures".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

SCHEME = "v1"
DEFAULT_TOLERANCE = 300
"""Seconds a signature's timestamp may differ from now, in either direction (Stripe's default)."""

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(Exception):
    """Base of every reason a webhook signature is refused; map it once to a 400 response."""


class MalformedSignature(SignatureError):
    """The header cannot be parsed: missing or bad timestamp, no ``v1`` entry, bad entry syntax."""


class StaleSignature(SignatureError):
    """The timestamp is further than the tolerance from now, in the past or the future."""


class BadSignature(SignatureError):
    """No ``v1`` entry matches the payload under any secret (forged, tampered, wrong secret)."""


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def _check_payload(payload: bytes) -> bytes:
    # The signature covers the raw body bytes; a str would have been decoded and may re-encode
    # differently, so it is refused rather than guessed at.
    if not isinstance(payload, bytes | bytearray):
        raise TypeError(f"payload must be the raw request body as bytes, not {type(payload).__name__}")
    return bytes(payload)


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The signature header value for ``payload``: ``"t=<timestamp>,v1=<hex HMAC-SHA256>"``."""
    payload = _check_payload(payload)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int (Unix seconds)")
    if not secret:
        raise ValueError("secret must be a non-empty str")
    return f"t={timestamp},{SCHEME}={_digest(payload, secret, timestamp)}"


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])`` from a header; other schemes (``v0``, ...) are ignored.

    Raises ``MalformedSignature`` on anything that is not exactly one numeric ``t`` and at least one
    well-formed ``v1`` entry.
    """
    if not isinstance(header, str) or not header.strip():
        raise MalformedSignature("missing signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise MalformedSignature(f"bad signature header entry {item.strip()!r}")
        value = value.strip()
        if key == "t":
            if timestamp is not None:
                raise MalformedSignature("more than one timestamp in signature header")
            if not _TIMESTAMP.fullmatch(value):
                raise MalformedSignature("signature timestamp is not a Unix time in seconds")
            timestamp = int(value)
        elif key == SCHEME:
            if not _HEX_SHA256.fullmatch(value):
                raise MalformedSignature("v1 signature is not a hex SHA-256 digest")
            signatures.append(value.lower())
    if timestamp is None:
        raise MalformedSignature("no timestamp in signature header")
    if not signatures:
        raise MalformedSignature("no v1 signature in signature header")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str,
    secret: str | Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> int:
    """Check a webhook signature header against the raw body; return the signed timestamp.

    ``secret`` is one secret or several (during a rotation on our side). Every comparison uses
    ``hmac.compare_digest`` and every candidate is compared (no early exit on a match), so
    timing does not reveal which entry or secret matched. The signature is checked before the
    timestamp, so a forged header is always ``BadSignature`` whatever its age.

    Raises ``MalformedSignature``, ``BadSignature``, or ``StaleSignature`` when
    ``abs(now - t) > tolerance`` (a timestamp exactly ``tolerance`` seconds away is accepted).
    """
    payload = _check_payload(payload)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise ValueError("secret must be a non-empty str or a sequence of them")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance <= 0:
        raise ValueError("tolerance must be a positive int (seconds)")

    timestamp, signatures = parse_signature_header(header)
    matched = False
    for candidate_secret in secrets:
        expected = _digest(payload, candidate_secret, timestamp)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise BadSignature("no signature matches the payload")

    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise StaleSignature(
            f"signature timestamp {timestamp} is {current - timestamp:+d}s from now (tolerance {tolerance}s)"
        )
    return timestamp
