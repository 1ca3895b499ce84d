"""The class roster: enrol, rename and remove students, reissue one student's credential, print join cards.

Every student has their own credential (credentials.py); the roster shows each one's code, join link
and QR code again (sealed copies), and a printable sheet with one card per student. Every form is a
POST carrying the session's CSRF token (security.py).
"""

from __future__ import annotations

from classroom_contract import store
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from classroom_dashboard import accounts, credentials, security_log
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import crop_store_or_none, get_redis

bp = Blueprint("enrolment", __name__)

MAX_NAME_LENGTH = 80


def public_url() -> str:
    """Base of join links: PUBLIC_URL, else the origin this page was served from (same proxy as the API)."""
    return current_app.config["PUBLIC_URL"] or request.url_root.rstrip("/")


def _student_id_or_404(student_id: str) -> str:
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id):
        abort(404)
    return student_id


def _display_name(student_id: str) -> str:
    name = " ".join((request.form.get("display_name") or "").split())
    return (name or student_id)[:MAX_NAME_LENGTH]


@bp.get("/classes/<class_id>/roster")
@login_required
def roster(class_id):
    """Enrolled students with their code, join link and QR code, and the forms to manage them."""
    return render_template("classes/roster.html", info=require_class(class_id), cards=_cards(class_id))


@bp.get("/classes/<class_id>/roster/print")
@login_required
def print_sheet(class_id):
    """One card per student (name, QR code, link, code) laid out for printing and cutting."""
    return render_template("classes/roster_print.html", info=require_class(class_id), cards=_cards(class_id))


def _cards(class_id: str) -> list[dict]:
    """The class's join cards (credentials unsealed with the dashboard's key, links on PUBLIC_URL)."""
    return credentials.cards(get_redis(), current_app.config["SECRET_KEY"], class_id, public_url())


@bp.post("/classes/<class_id>/roster")
@login_required
def enrol(class_id):
    require_class(class_id)
    student_id = request.form.get("student_id") or ""  # not stripped: "s1\n" is refused, not silently fixed
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id):
        flash("Student id must be 1-64 characters: letters, digits, and _ . - (not first).", "error")
        return redirect(url_for("enrolment.roster", class_id=class_id)), 303
    try:
        credentials.enrol(
            get_redis(), current_app.config["SECRET_KEY"], class_id, student_id, _display_name(student_id)
        )
    except (store.RecordExists, store.UnknownRecord) as exc:
        flash(f"Not enrolled: {exc}", "error")
    else:
        security_log.event("student_enrolled", class_id=class_id, student_id=student_id)
        flash(f"{student_id} enrolled: their join link and code are below.", "info")
    return redirect(url_for("enrolment.roster", class_id=class_id)), 303


@bp.post("/classes/<class_id>/roster/<student_id>/rename")
@login_required
def rename(class_id, student_id):
    require_class(class_id)
    _student_id_or_404(student_id)
    try:
        store.rename_student(get_redis(), class_id, student_id, _display_name(student_id))
    except store.UnknownRecord:
        abort(404)
    security_log.event("student_renamed", class_id=class_id, student_id=student_id)
    return redirect(url_for("enrolment.roster", class_id=class_id)), 303


@bp.post("/classes/<class_id>/roster/<student_id>/rotate")
@login_required
def rotate(class_id, student_id):
    """Revoke the student's link and code and issue new ones (a lost or shared card)."""
    require_class(class_id)
    _student_id_or_404(student_id)
    try:
        credentials.rotate(get_redis(), current_app.config["SECRET_KEY"], class_id, student_id)
    except store.UnknownRecord:
        abort(404)
    security_log.event("student_credential_rotated", class_id=class_id, student_id=student_id)
    flash(f"New join link for {student_id}: the old link and code no longer work.", "info")
    return redirect(url_for("enrolment.roster", class_id=class_id)), 303


@bp.post("/classes/<class_id>/roster/<student_id>/remove")
@login_required
def remove(class_id, student_id):
    """Unenrol: the credential stops working and every stored result of the student is erased."""
    require_class(class_id)
    _student_id_or_404(student_id)
    if not credentials.remove(get_redis(), crop_store_or_none(), class_id, student_id):
        abort(404)
    security_log.event("student_removed", class_id=class_id, student_id=student_id)
    flash(f"{student_id} removed: their link no longer works and their data was deleted.", "info")
    return redirect(url_for("enrolment.roster", class_id=class_id)), 303
