"""Password hashes of local users: Argon2id (``argon2-cffi``), with rehashing when the parameters change."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
"""The shortest password accepted for a local user."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("muxly-dummy-password-for-constant-time-checks")


def check_password_strength(password: str) -> str | None:
    """Why ``password`` is too weak, ``None`` when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password of at least {MIN_PASSWORD_LENGTH} characters"
    if len(set(password)) < 4:
        return "a password of more than three distinct characters"
    return None


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; the encoded string carries its parameters)."""
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches ``password_hash``.

    Without a hash (unknown user, external user) a dummy hash is checked anyway, so that the answer takes as
    long as for a real user and does not tell which usernames exist.
    """
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with older parameters than the current ones."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
