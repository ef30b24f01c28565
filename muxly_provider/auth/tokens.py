"""Opaque tokens: ``mxa_<session id>.<secret>`` (access) and ``mxr_<session id>.<secret>`` (refresh).

Only the SHA-256 of a token is stored (``auth_sessions.token_hash`` / ``refresh_token_hash``). The session id in
the token finds the row by primary key; the hash is then compared in constant time, so that lookups leak no
timing about the secret. Secrets carry 256 bits of randomness, so an unsalted SHA-256 is enough.

``refresh_token_hash`` holds the hash of the current refresh token followed by the hashes of the last
:data:`REFRESH_HISTORY` refresh tokens the session rotated away (space-separated). That is what tells a copied,
already-used refresh token (it matches an earlier hash: the session is revoked) from a forged one (it matches
nothing: nothing changes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

ACCESS_PREFIX = "mxa_"
REFRESH_PREFIX = "mxr_"
TokenKind = Literal["access", "refresh"]
RefreshMatch = Literal["current", "rotated"]
REFRESH_HISTORY = 10
"""Hashes of rotated-away refresh tokens kept per session to recognize a replayed copy."""


@dataclass(frozen=True)
class ParsedToken:
    """A token split into its session id and the token itself."""

    kind: TokenKind
    session_id: str
    token: str


def new_session_id() -> str:
    """A new random session id."""
    return uuid.uuid4().hex


def new_token(kind: TokenKind, session_id: str) -> str:
    """A new token of ``kind`` for the session ``session_id``."""
    prefix = ACCESS_PREFIX if kind == "access" else REFRESH_PREFIX
    return f"{prefix}{session_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The stored form of ``token``: its SHA-256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_match(token: str, stored_hash: str | None) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_token(token), stored_hash)


def refresh_match(token: str, stored: str | None) -> RefreshMatch | None:
    """Whether ``token`` is the session's current refresh token, one it rotated away, or neither.

    Every stored hash is compared in constant time (no early exit), so timing tells nothing either.

    :param token: the presented refresh token
    :param stored: the session's ``refresh_token_hash`` (current hash, then earlier ones)
    """
    hashes = (stored or "").split()
    presented = hash_token(token)
    matches = [hmac.compare_digest(presented, h) for h in hashes]
    if matches and matches[0]:
        return "current"
    if any(matches[1:]):
        return "rotated"
    return None


def rotated_hashes(new_token_: str, stored: str | None) -> str:
    """The ``refresh_token_hash`` after rotating to ``new_token_``: its hash, then the last earlier ones."""
    earlier = (stored or "").split()[:REFRESH_HISTORY]
    return " ".join([hash_token(new_token_), *earlier])


def parse_token(token: str) -> ParsedToken | None:
    """Split a Muxly token; ``None`` when ``token`` is not one (a JWT, garbage)."""
    kinds: tuple[tuple[str, TokenKind], ...] = ((ACCESS_PREFIX, "access"), (REFRESH_PREFIX, "refresh"))
    for prefix, kind in kinds:
        if token.startswith(prefix):
            session_id, dot, secret = token[len(prefix) :].partition(".")
            if dot and session_id and secret and len(token) < 256:
                return ParsedToken(kind, session_id, token)
    return None


def looks_like_muxly_token(token: str) -> bool:
    """Whether ``token`` has the shape of a Muxly token (any kind)."""
    return token.startswith((ACCESS_PREFIX, REFRESH_PREFIX))
