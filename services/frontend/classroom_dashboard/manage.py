"""Class management from the web UI: create a class and rotate its agent token.

A token is shown exactly once - in the response to the POST that made it - and stored only as its
SHA-256 (``classroom_contract.store``). It is never put in the session (a signed, not encrypted,
cookie) or a redirect URL, so a reload or the back button cannot show it again (pages are no-store).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from classroom_dashboard import accounts, security_log
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import get_redis

bp = Blueprint("manage", __name__)


@bp.post("/classes")
@login_required
def create_class():
    """Create a class owned by the logged-in teacher and show its agent token once."""
    class_id = (request.form.get("class_id") or "").strip()
    name = (request.form.get("name") or "").strip()
    try:
        token = accounts.create_class(get_redis(), g.user["username"], class_id, name or class_id)
    except accounts.AccountError as exc:
        flash(f"Class not created: {exc}", "error")
        return redirect(url_for("classes.index"))
    security_log.event("class_created", class_id=class_id)
    info = {"class_id": class_id, "name": name or class_id}
    return render_template("classes/token.html", info=info, token=token, created=True), 201


@bp.post("/classes/<class_id>/token")
@login_required
def rotate_token(class_id):
    """Replace the class's agent token: the old one stops working at once; the new one is shown once."""
    info = require_class(class_id)
    token = accounts.rotate_class_token(get_redis(), class_id)
    security_log.event("class_token_rotated", class_id=class_id)
    return render_template("classes/token.html", info=info, token=token, created=False)
