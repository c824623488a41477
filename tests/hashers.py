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
