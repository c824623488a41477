"""The password hasher of the test run: Argon2id, Django's own hasher, at the lowest cost.

Django's default Argon2 cost (100 MiB, two passes, eight lanes) is what production uses and takes
tens of milliseconds of CPU per sign-in, per ``create_user`` and per unknown-user sign-in (Django
hashes a dummy password to keep the timing flat). The suite signs in hundreds of times; it checks
that passwords are Argon2 hashes and that sign-in works, not the cost, which is a setting
(``tests/security/test_auth.py`` checks production's). Hashes made here still name ``argon2`` and
carry their own parameters, so production's hasher verifies them (and re-hashes them at its cost
on the next sign-in). Decision 1071.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class LowCostArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with one pass over 64 KiB in one lane (Django documents subclassing to tune cost)."""

    time_cost = 1
    memory_cost = 64
    parallelism = 1

    def must_update(self, encoded: str) -> bool:
        """Never re-hash down. A server the tests start on the test database (gunicorn, runserver)
        hashes at production's cost when a firm's user signs in there; re-hashing that here would
        change the password field, and with it the session hash of every client signed in as that
        user in the test (Django ends such sessions)."""
        params = self.decode(encoded)["params"]
        ours = (self.time_cost, self.memory_cost, self.parallelism)
        if all(
            theirs >= own
            for theirs, own in zip((params.time_cost, params.memory_cost, params.parallelism), ours, strict=True)
        ):
            return False
        return super().must_update(encoded)


def is_low_cost(encoded: str) -> bool:
    """Whether ``encoded`` was made by LowCostArgon2PasswordHasher's parameters."""
    hasher = LowCostArgon2PasswordHasher()
    if not encoded.startswith(f"{hasher.algorithm}$"):
        return False
    params = hasher.decode(encoded)["params"]
    return (params.time_cost, params.memory_cost, params.parallelism) == (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
    )
