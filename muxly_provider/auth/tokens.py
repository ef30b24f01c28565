"""Opaque tokens: ``mxa_<session id>.<secret>`` (access) and ``mxr_<session id>.<secret>`` (refresh).

Only the SHA-256 of a token is stored (``auth_sessions.token_hash`` / ``refresh_token_hash``). The session id in
the token finds the row by primary key; the hash is then compared in constant time, so that lookups leak no
timing about the secret. Secrets carry 256 bits of randomness, so an unsalted SHA-256 is enough.
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
