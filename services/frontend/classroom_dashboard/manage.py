"""Class management from the web UI: create a class, then enrol its students on the roster.

There is no class token: each student gets their own credential on the roster (enrolment.py).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from classroom_dashboard import accounts, security_log
from classroom_dashboard.auth import login_required
from classroom_dashboard.db import get_redis

bp = Blueprint("manage", __name__)


@bp.post("/classes")
@login_required
def create_class():
    """Create a class owned by the logged-in teacher and open its roster to enrol students."""
    class_id = (request.form.get("class_id") or "").strip()
    name = (request.form.get("name") or "").strip()
    try:
        accounts.create_class(get_redis(), g.user["username"], class_id, name or class_id)
    except accounts.AccountError as exc:
        flash(f"Class not created: {exc}", "error")
        return redirect(url_for("classes.index"))
    security_log.event("class_created", class_id=class_id)
    flash(f"Class {name or class_id} created: enrol its students to hand out their join links.", "info")
    return redirect(url_for("enrolment.roster", class_id=class_id), 303)
