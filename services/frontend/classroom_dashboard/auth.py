"""Logging in and out, the logged-in teacher, login throttling and class access checks.

Browsers log in with the form (session cookie). Scripts - such as the end-to-end test - may call
the read-only ``/api/`` endpoints with HTTP Basic credentials instead; both paths go through the
same throttle: after LOGIN_MAX_ATTEMPTS failures for a username (or 4x that from one address)
within LOGIN_LOCKOUT_SECONDS, every attempt is refused - even with the right password - until the
counter expires.
"""

from __future__ import annotations

import functools

from classroom_contract import keys, store
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from classroom_dashboard import accounts
from classroom_dashboard.db import get_redis

bp = Blueprint("auth", __name__, url_prefix="/auth")

IP_FACTOR = 4


def _scopes(username: str) -> list[tuple[str, int]]:
    limit = current_app.config["LOGIN_MAX_ATTEMPTS"]
    return [(f"user:{accounts.normalise(username)}", limit), (f"ip:{request.remote_addr}", limit * IP_FACTOR)]


def authenticate(username: str, password: str) -> tuple[dict | None, str | None]:
    """(teacher, None) on success, else (None, reason). Counts failures and enforces the lockout."""
    client = get_redis()
    scopes = _scopes(username)
    counts = client.mget([keys.login_failures(s) for s, _ in scopes])
    if any(int(c or 0) >= limit for c, (_, limit) in zip(counts, scopes, strict=True)):
        return None, "Too many failed attempts. Wait a few minutes and try again."
    if accounts.check_password(client, username, password):
        client.delete(keys.login_failures(scopes[0][0]))
        return accounts.get_teacher(client, username), None
    pipe = client.pipeline()
    for scope, _ in scopes:
        pipe.incr(keys.login_failures(scope))
        pipe.expire(keys.login_failures(scope), current_app.config["LOGIN_LOCKOUT_SECONDS"])
    pipe.execute()
    return None, "Wrong username or password."


@bp.before_app_request
def load_logged_in_user() -> None:
    """g.user = the teacher of this session (or of Basic credentials on /api/), else None."""
    g.user = None
    if request.endpoint == "static":
        return
    username = session.get("user")
    if username:
        g.user = accounts.get_teacher(get_redis(), username)
        if g.user is None:  # account deleted: end the session
            session.clear()
    elif request.authorization and request.authorization.type == "basic" and request.blueprint == "api":
        g.user, _ = authenticate(request.authorization.username or "", request.authorization.password or "")
        g.basic_auth = True


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


def _safe_next(target: str | None) -> str:
    # Only local paths: an attacker's link must not bounce a teacher to another site after login.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("classes.index")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the login form; on POST check the password (throttled) and start a fresh session."""
    if request.method == "POST":
        teacher, error = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if teacher is not None:
            session.clear()  # no session fixation: a new session (and CSRF token) after login
            session["user"] = teacher["username"]
            session.permanent = True
            return redirect(_safe_next(request.form.get("next")))
        flash(error, "error")
        return render_template("auth/login.html", next=request.form.get("next", "")), 401
    return render_template("auth/login.html", next=request.args.get("next", ""))


@bp.post("/logout")
def logout():
    """End the session (POST with CSRF token, so no other site can log a teacher out)."""
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
