"""Password rules beyond Django's own validators (ASVS 5.0 V6.2)."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """Refuse passwords longer than ``max_length`` (default 128): long enough for passphrases and
    password managers (ASVS asks for at least 64), short enough to bound the hashing work."""

    def __init__(self, max_length: int = 128):
        if max_length < 64:
            raise ValueError("ASVS requires allowing passwords of at least 64 characters")
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is too long. Use at most {self.max_length} characters.",
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self):
        return f"Your password can be up to {self.max_length} characters long."
