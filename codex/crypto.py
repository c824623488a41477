"""Envelope encryption of the secrets Codex must read back (TOTP keys, stored API responses that
carry a secret, provider keys).

Each value is encrypted with a fresh data key (Fernet: AES-128-CBC + HMAC-SHA256); the data key is
itself encrypted ("wrapped") with the master keys from ``CODEX_ENCRYPTION_KEYS`` through
``cryptography``'s ``MultiFernet``: the first key wraps, every listed key unwraps. Rotating the
master key therefore re-wraps each value's small data key (``rotate``), and the old key keeps
working until it is removed from the list.

A sealed value reads ``enc1$<wrapped data key>$<ciphertext>``. A value that does not decrypt (a
tampered ciphertext, a key removed too soon) raises ``DecryptionError``: nothing decrypts to
garbage silently.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc1$"


class SealedTextField(models.TextField):
    """A text column holding values sealed by ``seal``. The model still seals and unseals
    explicitly; the type lets ``rotate_encryption_keys`` find every such column."""


class DecryptionError(Exception):
    """A sealed value could not be opened with any of the configured keys."""


def master_keys_parse(raw: str) -> list[bytes]:
    """``CODEX_ENCRYPTION_KEYS`` (comma-separated Fernet keys) -> keys; raises ImproperlyConfigured
    naming the variable for an empty list or a malformed key."""
    keys = [part.strip().encode() for part in raw.split(",") if part.strip()]
    if not keys:
        raise ImproperlyConfigured("CODEX_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    for index, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"CODEX_ENCRYPTION_KEYS: key {index} is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with `python manage.py rotate_encryption_keys --new-key`."
            ) from exc
    return keys


@lru_cache(maxsize=4)
def _master(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def master() -> MultiFernet:
    return _master(tuple(master_keys_parse(",".join(settings.CODEX_ENCRYPTION_KEYS))))


def is_sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(plaintext: str) -> str:
    data_key = Fernet.generate_key()
    ciphertext = Fernet(data_key).encrypt(plaintext.encode())
    wrapped = master().encrypt(data_key)
    return f"{PREFIX}{wrapped.decode()}${ciphertext.decode()}"


def _split(sealed: str) -> tuple[bytes, bytes]:
    if not is_sealed(sealed):
        raise DecryptionError("Not a sealed value.")
    try:
        wrapped, ciphertext = sealed.removeprefix(PREFIX).split("$")
    except ValueError as exc:
        raise DecryptionError("A sealed value has the form enc1$<key>$<ciphertext>.") from exc
    return wrapped.encode(), ciphertext.encode()


def unseal(sealed: str) -> str:
    wrapped, ciphertext = _split(sealed)
    try:
        data_key = master().decrypt(wrapped)
    except InvalidToken as exc:
        raise DecryptionError(
            "No key in CODEX_ENCRYPTION_KEYS opens this value (a key removed too soon, or a tampered value)."
        ) from exc
    try:
        return Fernet(data_key).decrypt(ciphertext).decode()
    except InvalidToken as exc:
        raise DecryptionError("The value was tampered with: its authentication tag does not match.") from exc


def rotate(sealed: str) -> str:
    """The same value with its data key wrapped by the first (newest) master key. Raises
    ``DecryptionError`` if no configured key opens it; the ciphertext itself is unchanged."""
    wrapped, ciphertext = _split(sealed)
    try:
        rewrapped = master().rotate(wrapped)
    except InvalidToken as exc:
        raise DecryptionError("No key in CODEX_ENCRYPTION_KEYS opens this value: rotation refused.") from exc
    # The data key must open the ciphertext too, or a tampered value would be re-wrapped as good.
    try:
        Fernet(master().decrypt(rewrapped)).decrypt(ciphertext)
    except InvalidToken as exc:
        raise DecryptionError("The value was tampered with: rotation refused.") from exc
    return f"{PREFIX}{rewrapped.decode()}${ciphertext.decode()}"


def wrapped_by_newest(sealed: str) -> bool:
    """Whether the first master key wraps this value (so rotation has nothing to do)."""
    wrapped, _ = _split(sealed)
    first = Fernet(master_keys_parse(",".join(settings.CODEX_ENCRYPTION_KEYS))[0])
    try:
        first.decrypt(wrapped)
    except InvalidToken:
        return False
    return True
