"""Logging in and out, changing one's password, the logged-in teacher, login throttling, class access.

Browsers log in with the form (a server-side session, see sessions.py). Scripts - such as the
end-to-end test - may call the read-only ``/api/`` endpoints with HTTP Basic credentials instead;
both paths go through the same throttle.

The throttle counts attempts per (username, client address) and per client address, never per
username alone, so nobody can lock a teacher out from elsewhere:

- LOGIN_MAX_ATTEMPTS failures for one username from one address lock that pair for
  LOGIN_LOCKOUT_SECONDS (even the right password is refused there); the teacher logs in from any
  other address as usual;
- IP_FACTOR x that many failures from one address (any usernames) lock the address.

The client address is the socket's peer, or - with TRUSTED_PROXY_HOPS=n - the address the n-th
proxy saw (X-Forwarded-For); an IPv6 client counts as its /64, which one host usually owns.
Trade-off: an attacker with many addresses (a botnet) gets LOGIN_MAX_ATTEMPTS guesses per address
and window against one username; a per-username limit would stop that but would hand every
attacker a switch that keeps the teacher out. Against that, passwords have a minimum length,
hashes are scrypt, and every failure is logged (security_log) for an operator to notice. Users
behind one NAT share the per-address counter: IP_FACTOR x LOGIN_MAX_ATTEMPTS failures from a school's
network (a student guessing names) lock that network, not teachers elsewhere.

Each attempt is counted *before* the password is checked (INCR, atomically with its expiry), so
parallel guesses cannot slip past the limit; a successful login gives its count back.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import unquote, urlsplit

from classroom_contract import store
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from classroom_dashboard import accounts, keys, security_log, sessions
from classroom_dashboard.db import get_redis

bp = Blueprint("auth", __name__, url_prefix="/auth")

IP_FACTOR = 4
#: Endpoints that never need the teacher, so they do not touch Redis (liveness must not).
NO_USER_ENDPOINTS = frozenset({"static", "healthz", "readyz"})
THROTTLED = "Too many failed attempts. Wait a few minutes and try again."
# Undo one counted attempt, never below zero nor creating a key (it may have expired meanwhile).
_GIVE_BACK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


def client_address() -> str:
    """The client as the throttle counts it: its address, or its /64 for IPv6."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _scopes(username: str) -> list[tuple[str, int]]:
    limit = current_app.config["LOGIN_MAX_ATTEMPTS"]
    name = accounts.normalise(username)
    name = name if accounts.USERNAME_PATTERN.match(name) else "-"  # no attacker-sized keys
    address = client_address()
    return [
        (keys.login_failures(f"user:{name}@{address}"), limit),
        (keys.login_failures(f"ip:{address}"), limit * IP_FACTOR),
    ]


def authenticate(username: str, password: str, via: str = "form") -> tuple[dict | None, str | None]:
    """(teacher, None) on success, else (None, reason). Counts the attempt and enforces the lockout."""
    client = get_redis()
    scopes = _scopes(username)
    pipe = client.pipeline()  # MULTI: each counter gets its TTL in the same step it is created
    for key, _ in scopes:
        pipe.incr(key)
        pipe.expire(key, current_app.config["LOGIN_LOCKOUT_SECONDS"], nx=True)
    counts = pipe.execute()[0::2]
    if any(count > limit for count, (_, limit) in zip(counts, scopes, strict=True)):
        security_log.event("login_throttled", username=accounts.normalise(username), via=via)
        return None, THROTTLED
    if accounts.check_password(client, username, password):
        client.delete(scopes[0][0])
        client.eval(_GIVE_BACK, 1, scopes[1][0])
        return accounts.get_teacher(client, username), None
    security_log.event("login_failed", username=accounts.normalise(username), via=via)
    return None, "Wrong username or password."


@bp.before_app_request
def load_logged_in_user() -> None:
    """g.user = the teacher of this session (or of Basic credentials on /api/), else None."""
    g.user = None
    if request.endpoint in NO_USER_ENDPOINTS:
        return
    username = session.get("user")
    if username:
        g.user = sessions.current_teacher(get_redis())
        if g.user is None:  # logged out, password changed or reset, account gone: the cookie is dead
            security_log.event("session_rejected", username=username)
    elif request.authorization and request.authorization.type == "basic" and request.blueprint == "api":
        credentials = request.authorization
        g.user, _ = authenticate(credentials.username or "", credentials.password or "", via="basic")


def login_required(view):
    """Redirect to the login page (or 401 for the API) unless a teacher is logged in."""

    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            if request.blueprint == "api":
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path))
        return view(**kwargs)

    return wrapped


def require_class(class_id: str) -> dict:
    """The class's meta if the logged-in teacher owns it (or is an admin); 404 unknown, 403 not theirs."""
    if not accounts.CLASS_ID_PATTERN.fullmatch(class_id):
        abort(404)
    info = store.class_info(get_redis(), class_id)
    if info is None:
        abort(404)
    if info.get("owner") != g.user["username"] and not g.user["admin"]:
        abort(403)
    return {"class_id": class_id, **info}


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the class list: no open redirect after login.

    Only printable ASCII (`request.full_path`, which makes these links, is percent-encoded), one
    leading slash, no backslash, no scheme or host - checked on the value and on its percent-decoded
    form, because browsers drop tabs and newlines and read backslashes as slashes
    (``/<TAB>/evil.example`` would become ``//evil.example``).
    """
    if target and len(target) <= 2048 and all(_local_path(form) for form in (target, unquote(target))):
        return target
    return url_for("classes.index")


def _local_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    if any(not 0x21 <= ord(char) <= 0x7E for char in text):  # controls, spaces, non-ASCII
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the login form; on POST check the password (throttled) and start a fresh session."""
    if request.method == "POST":
        client = get_redis()
        username = request.form.get("username", "")
        epoch = sessions.epoch_of(client, username)  # before the check: see sessions.start
        teacher, error = authenticate(username, request.form.get("password", ""))
        if teacher is not None:
            sessions.start(client, teacher["username"], epoch)
            security_log.event("login_succeeded", username=teacher["username"])
            return redirect(safe_next(request.form.get("next")))
        flash(error, "error")
        return render_template("auth/login.html", next=request.form.get("next", "")), 401
    return render_template("auth/login.html", next=request.args.get("next", ""))


@bp.post("/logout")
def logout():
    """End the session for good (POST with CSRF token, so no other site can log a teacher out)."""
    if g.user is not None:
        security_log.event("logout", username=g.user["username"])
    sessions.end(get_redis())
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=("GET", "POST"))
@login_required
def password():
    """Change one's own password: every other session of the account ends (a copied cookie too)."""
    if request.method == "GET":
        return render_template("auth/password.html", min_password=accounts.MIN_PASSWORD_LENGTH)
    client, username = get_redis(), g.user["username"]
    new = request.form.get("new_password", "")
    _, error = authenticate(username, request.form.get("current_password", ""))
    if error is None and new != request.form.get("repeat_password", ""):
        error = "The new passwords differ."
    if error is None:
        try:
            accounts.set_password(client, username, new)
        except accounts.AccountError as exc:
            error = str(exc).capitalize() + "."
    if error is not None:
        flash(error, "error")
        return render_template("auth/password.html", min_password=accounts.MIN_PASSWORD_LENGTH), 400
    sessions.start(client, username, sessions.epoch_of(client, username))
    security_log.event("password_changed", username=username, by=username)
    flash("Password changed. Every other session of your account was logged out.", "info")
    return redirect(url_for("classes.index"))
