"""Student credentials: the one secret each enrolled student's agent or browser page presents.

A credential is 16 random Crockford-base32 characters (80 bits), shown to people as
``ABCD-EFGH-JKMN-PQRS``. Whatever a student types or a link carries is normalised first (spaces and
dashes removed, upper case, I and L read as 1, O as 0), so a misread character still works.

Trust model: the dashboard makes a credential, shows it to the teacher (roster, printed sheet) and
keeps it only encrypted under a key derived from its own SECRET_KEY; the API and the workers see
only its SHA-256, which maps to exactly one (class id, student id). A fast hash is enough: 80 random
bits cannot be guessed offline from the hash, and nothing else is derived from the credential.
The join link carries it in the URL fragment (``<PUBLIC_URL>/join#<credential>``), which browsers
never send to a server, so it stays out of access logs.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

#: Crockford's base32 alphabet: no I, L, O or U, so nothing reads as another character.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 16
#: Characters people confuse, read the way Crockford's base32 decodes them.
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})
_ALLOWED = frozenset(ALPHABET)
#: The path of the capture page on the API origin (the credential follows in the fragment).
JOIN_PATH = "/join"


def new_credential() -> str:
    """A fresh credential (normalised form, no dashes): 16 characters = 80 random bits."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str | None) -> str | None:
    """The canonical form of a presented credential, or None when it cannot be one."""
    if not isinstance(text, str):
        return None
    canonical = "".join(text.split()).replace("-", "").upper().translate(_CONFUSABLE)
    if len(canonical) != LENGTH or not set(canonical) <= _ALLOWED:
        return None
    return canonical


def credential_sha256(text: str) -> str | None:
    """SHA-256 hex of the normalised credential: the only form the server side keeps, or None if invalid."""
    canonical = normalise(text)
    return None if canonical is None else hashlib.sha256(canonical.encode("ascii")).hexdigest()


def display(credential: str) -> str:
    """``ABCD-EFGH-JKMN-PQRS``: the form printed for people to read and type."""
    canonical = normalise(credential)
    if canonical is None:
        raise ValueError("not a credential")
    return "-".join(canonical[i : i + 4] for i in range(0, LENGTH, 4))


def join_link(public_url: str, credential: str) -> str:
    """``<public_url>/join#<credential>``: the link a student opens (or an agent is given)."""
    canonical = normalise(credential)
    if canonical is None:
        raise ValueError("not a credential")
    return f"{public_url.rstrip('/')}{JOIN_PATH}#{canonical}"


def parse_join_link(url: str) -> tuple[str, str]:
    """(server base URL, credential) of a join link; ValueError saying what is wrong otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("a join link starts with http:// or https://")
    if not parts.path.rstrip("/").endswith(JOIN_PATH):
        raise ValueError(f"a join link ends in {JOIN_PATH}#<code>")
    credential = normalise(parts.fragment)
    if credential is None:
        raise ValueError("the join link carries no valid code after '#'")
    base_path = parts.path.rstrip("/")[: -len(JOIN_PATH)]
    return f"{parts.scheme}://{parts.netloc}{base_path}", credential
