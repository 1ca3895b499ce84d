"""Class tokens: what agents present, and how the server stores them (hashed, never in clear)."""

import hashlib
import secrets


def new_token() -> str:
    """A fresh class token: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: the only form in which the server keeps it.

    Tokens are high-entropy random strings, so a fast hash is enough (no password stretching).
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
