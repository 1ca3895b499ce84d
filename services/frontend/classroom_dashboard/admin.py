"""Administration: an admin teacher lists the teacher accounts and creates new ones.

Only accounts with the admin flag may open these pages (403 for everyone else). New teachers get
an initial password from the admin; there is no self-service sign-up.
"""

from __future__ import annotations

import functools

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from classroom_dashboard import accounts, security_log
from classroom_dashboard.auth import login_required
from classroom_dashboard.db import get_redis

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view):
    """403 unless the logged-in teacher is an admin (login_required goes first)."""

    @functools.wraps(view)
    def wrapped(**kwargs):
        if not g.user["admin"]:
            abort(403)
        return view(**kwargs)

    return login_required(wrapped)


@bp.errorhandler(403)
def _forbidden(error):
    return render_template(
        "error.html", code=403, title="Administrators only", description="Ask an administrator for this."
    ), 403


@bp.get("")
@admin_required
def index():
    """Every teacher account, and the form for a new one."""
    return render_template(
        "admin/index.html", teachers=accounts.list_teachers(get_redis()), min_password=accounts.MIN_PASSWORD_LENGTH
    )


@bp.post("/teachers")
@admin_required
def create_teacher():
    """Create a teacher (optionally an admin) with an initial password."""
    try:
        username = accounts.create_teacher(
            get_redis(),
            request.form.get("username", ""),
            request.form.get("password", ""),
            admin=request.form.get("admin") == "1",
        )
    except accounts.AccountError as exc:
        flash(f"Teacher not created: {exc}", "error")
        return redirect(url_for("admin.index"))
    security_log.event("teacher_created", username=username, admin=request.form.get("admin") == "1")
    flash(f"Teacher {username} created. Give them their initial password in person.", "info")
    return redirect(url_for("admin.index"))
