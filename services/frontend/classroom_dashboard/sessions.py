"""Server-side login sessions, so a session can be ended for good (logout, password change or reset).

Flask's cookie is signed, not stored: on its own, a copied cookie would keep working until it
expires, whatever the teacher does. So the cookie also carries a random session id, and Redis keeps
``keys.dashboard_session(sha256(id))`` = {username, epoch, created_at} with the session's lifetime
as TTL. A request is logged in only if that record exists, names the cookie's user, and its epoch
is the account's current ``session_epoch``:

- logout deletes the record: that cookie is dead, copies included;
- a password change or reset gives the account a new epoch: every session made before it is dead
  (records of old epochs simply expire).

A session lasts PERMANENT_SESSION_LIFETIME (SESSION_HOURS) from login, however active: the record's
TTL is not renewed, so a stolen cookie is worthless after that at the latest.

Redis stores only the id's hash: a copy of Redis does not hand out live sessions. One extra Redis
round trip per request (pipelined with the account lookup that was already there).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import current_app, session

from classroom_dashboard import accounts, keys

SESSION_ID = "sid"


def _record_key(session_id: str) -> str:
    return keys.dashboard_session(hashlib.sha256(session_id.encode()).hexdigest())


def start(client, username: str, epoch: str | None) -> None:
    """A fresh session for `username` (call after the password was checked), made under `epoch`.

    `epoch` is the account's session_epoch read *before* the password check, so a password change
    racing with this login leaves the new session already revoked rather than alive.
    """
    previous = session.get(SESSION_ID)
    session.clear()  # no session fixation: a new id (and CSRF token) after login
    session_id = secrets.token_urlsafe(32)
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    record = {"username": username, "epoch": epoch or "", "created_at": f"{time.time():.0f}"}
    pipe = client.pipeline()
    if previous:  # logging in again in the same browser: the session it replaces ends
        pipe.delete(_record_key(previous))
    pipe.hset(_record_key(session_id), mapping=record)
    pipe.expire(_record_key(session_id), lifetime)
    pipe.execute()
    session["user"] = username
    session[SESSION_ID] = session_id
    session.permanent = True


def current_teacher(client) -> dict | None:
    """The teacher of this request's session if it is still valid, else None (and the cookie is cleared)."""
    username, session_id = session.get("user"), session.get(SESSION_ID)
    if not username:
        return None
    if not session_id:  # a cookie from before server-side sessions: no record can vouch for it
        session.clear()
        return None
    admin = _lookup(client, username, session_id)
    if admin is None:
        session.clear()
        return None
    return {"username": username, "admin": admin == "1"}


def _lookup(client, username: str, session_id: str) -> str | None:
    """The account's admin flag if the session record is valid for `username`, else None."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(_record_key(session_id), "username", "epoch")
    pipe.hmget(keys.teacher(accounts.normalise(username)), "admin", "session_epoch")
    (owner, epoch), (admin, current_epoch) = pipe.execute()
    if owner != username or admin is None or (epoch or "") != (current_epoch or ""):
        return None
    return admin


def watcher(client):
    """A callable saying whether this request's session is still valid, for responses that last
    (the live stream): a logout or password change then ends them within one poll, not at their
    natural end. Requests without a session (HTTP Basic) were checked when they started."""
    username, session_id = session.get("user"), session.get(SESSION_ID)
    if not username or not session_id:
        return lambda: True
    return lambda: _lookup(client, username, session_id) is not None


def end(client) -> None:
    """Revoke this request's session (logout): its record goes, so copies of the cookie die too."""
    session_id = session.get(SESSION_ID)
    if session_id:
        client.delete(_record_key(session_id))
    session.clear()


def epoch_of(client, username: str) -> str | None:
    """The account's current session epoch (None for no account, or one made before epochs existed)."""
    username = accounts.normalise(username)
    if not accounts.USERNAME_PATTERN.match(username):
        return None
    value = client.hget(keys.teacher(username), "session_epoch")
    return value.decode() if isinstance(value, bytes) else value
