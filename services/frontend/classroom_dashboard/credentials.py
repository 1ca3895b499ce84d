"""Students' credentials on the dashboard side: issue, seal, show again, revoke; and their QR codes.

Trust model (issue 14, finding 7): each enrolled student has one credential (contract `tokens.py`).
The API and the workers see only its SHA-256, which maps to (class id, student id): they can check a
credential but never show it. The dashboard also keeps a sealed copy, so a teacher can print the
roster's join links again: AES-256-GCM under a key derived (HKDF-SHA256) from the dashboard's own
SECRET_KEY, bound to its class and student (associated data), so a copy cannot be moved to another
student's record. Whoever holds SECRET_KEY and a Redis dump can read the credentials; both are the
dashboard's secrets already (SECRET_KEY also signs the teachers' sessions). A new SECRET_KEY makes old
copies unreadable: the roster then says so, and rotating a student's credential issues a readable one.
"""

from __future__ import annotations

import base64
import io
import os

import segno
from classroom_contract import store, tokens
from classroom_contract.erasure import erase_student
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_INFO = b"classroom-dashboard student credential seal v1"


def _key(secret_key: str | bytes) -> bytes:
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


def _aad(class_id: str, student_id: str) -> bytes:
    return f"{class_id}\0{student_id}".encode()


def seal(secret_key: str | bytes, class_id: str, student_id: str, credential: str) -> str:
    """The credential encrypted for storage next to the student's enrolment (text, URL-safe base64)."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key)).encrypt(nonce, credential.encode("ascii"), _aad(class_id, student_id))
    return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii")


def unseal(secret_key: str | bytes, class_id: str, student_id: str, sealed: str | None) -> str | None:
    """The credential, or None when there is no copy or it was sealed under another key or for another student."""
    try:
        raw = base64.urlsafe_b64decode(sealed or "")
    except ValueError:
        return None
    if len(raw) < 1 + 12 + 16 or raw[:1] != _VERSION:
        return None
    try:
        plain = AESGCM(_key(secret_key)).decrypt(raw[1:13], raw[13:], _aad(class_id, student_id))
    except InvalidTag:
        return None
    return tokens.normalise(plain.decode("ascii", "replace"))


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text`, made here (no external service); scales with its box (no fixed size)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        buffer, kind="svg", xmldecl=False, svgns=True, nl=False, omitsize=True, border=2, svgclass="qr"
    )
    return buffer.getvalue().decode("utf-8")


def enrol(client, secret_key: str, class_id: str, student_id: str, display_name: str) -> str:
    """Enrol a student with a fresh credential; returns it. store.RecordExists / UnknownRecord as the store."""
    credential = tokens.new_credential()
    sealed = seal(secret_key, class_id, student_id, credential)
    store.enrol_student(client, class_id, student_id, display_name, credential, sealed)
    return credential


def rotate(client, secret_key: str, class_id: str, student_id: str) -> str:
    """A new credential for an enrolled student; the old one (and its join link) stops working at once."""
    credential = tokens.new_credential()
    store.rotate_credential(
        client, class_id, student_id, credential, seal(secret_key, class_id, student_id, credential)
    )
    return credential


def remove(client, crop_store, class_id: str, student_id: str) -> bool:
    """Unenrol a student: revoke the credential first (no more writes), then erase everything about
    them (`classroom_contract.erasure.erase_student`; `crop_store` None leaves queued crops to expire)."""
    was_enrolled = store.unenrol_student(client, class_id, student_id)
    erase_student(client, crop_store, class_id, student_id)
    return was_enrolled


def cards(client, secret_key: str, class_id: str, public_url: str, with_qr: bool = True) -> list[dict]:
    """The roster, one dict per enrolled student: ids, name, and (when readable) code, join link and QR SVG."""
    result = []
    for record in store.enrolled_students(client, class_id):
        credential = unseal(secret_key, class_id, record["student_id"], record.get("sealed_credential"))
        card = {"student_id": record["student_id"], "display_name": record.get("display_name") or record["student_id"]}
        if credential is not None:
            link = tokens.join_link(public_url, credential)
            card.update(code=tokens.display(credential), link=link, qr=qr_svg(link) if with_qr else None)
        result.append(card)
    return result
