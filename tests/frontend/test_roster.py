"""The roster: enrol, rename, remove, reissue one student's link; join cards with a local QR code.

Also issue 14, finding 11: ids that end in a newline (Python's `$` matches before one) are refused
cleanly everywhere instead of reaching Redis.
"""

from __future__ import annotations

import re

import pytest
from classroom_contract import keys, store, tokens
from classroom_dashboard import accounts, credentials

from tests.support.frontend import csrf_from, login, result, write

CODE = re.compile(
    r'<tr data-student="([^"]+)">.*?<code class="credential">([^<]+)</code>.*?<a class="join-link" href="([^"]+)"', re.S
)


def _roster(client, class_id="7b") -> tuple[str, dict]:
    page = client.get(f"/classes/{class_id}/roster")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return html, {sid: (code, link) for sid, code, link in CODE.findall(html)}


def _enrol(client, student_id, name="", class_id="7b"):
    html, _ = _roster(client, class_id)
    return client.post(
        f"/classes/{class_id}/roster",
        data={"csrf_token": csrf_from(html), "student_id": student_id, "display_name": name},
    )


def test_enrolled_students_get_a_code_link_and_qr_that_the_roster_shows_again(alice, redis_client, app):
    app.config["PUBLIC_URL"] = "https://class.example.org"
    assert _enrol(alice, "anna", "Anna K.").status_code == 303
    assert _enrol(alice, "ben").status_code == 303
    html, shown = _roster(alice)
    assert set(shown) == {"anna", "ben"} and "Anna K." in html
    code, link = shown["anna"]
    server, credential = tokens.parse_join_link(link)
    assert server == "https://class.example.org" and tokens.display(credential) == code
    assert store.student_for_credential(redis_client, code) == store.Enrolment("7b", "anna")
    qr = html.split("<svg", 1)[1].split("</svg>")[0]
    assert html.count("<svg") == 2 and "<path" in qr
    assert "href" not in qr and "<image" not in qr and credential not in qr  # drawn here, nothing fetched
    # Redis holds the hash and a sealed copy, never the credential itself
    stored = str(redis_client.hgetall(keys.enrolment("7b", "anna")))
    assert credential not in stored and tokens.credential_sha256(credential) in stored
    assert _roster(alice)[1] == shown  # shown again, the same


def test_the_sealed_copy_opens_only_with_the_dashboards_key_and_for_its_student():
    credential = tokens.new_credential()
    sealed = credentials.seal("key-1", "7b", "anna", credential)
    assert credentials.unseal("key-1", "7b", "anna", sealed) == credential
    assert credentials.unseal("key-2", "7b", "anna", sealed) is None  # another SECRET_KEY
    assert credentials.unseal("key-1", "7b", "ben", sealed) is None  # moved to another student's record
    assert credentials.unseal("key-1", "7b", "anna", "garbage") is None


def test_a_new_secret_key_leaves_the_roster_usable(alice, app, redis_client):
    _enrol(alice, "anna")
    app.config["SECRET_KEY"] = "another-key"
    login(alice, "alice")
    html, shown = _roster(alice)
    assert shown == {} and "issue a new link" in html
    page = alice.get("/classes/7b/roster").get_data(as_text=True)
    assert alice.post("/classes/7b/roster/anna/rotate", data={"csrf_token": csrf_from(page)}).status_code == 303
    assert set(_roster(alice)[1]) == {"anna"}


def test_reissuing_a_link_revokes_the_old_one(alice, redis_client):
    _enrol(alice, "anna")
    html, shown = _roster(alice)
    old = shown["anna"][0]
    assert alice.post("/classes/7b/roster/anna/rotate", data={"csrf_token": csrf_from(html)}).status_code == 303
    new = _roster(alice)[1]["anna"][0]
    assert new != old
    assert store.student_for_credential(redis_client, old) is None
    assert store.student_for_credential(redis_client, new) == store.Enrolment("7b", "anna")


def test_rename_and_remove(alice, redis_client):
    _enrol(alice, "anna", "Anna")
    write(redis_client, result(class_id="7b", student_id="anna"))
    html, shown = _roster(alice)
    token = csrf_from(html)
    assert (
        alice.post(
            "/classes/7b/roster/anna/rename", data={"csrf_token": token, "display_name": " Anna  K. "}
        ).status_code
        == 303
    )
    assert store.enrolment(redis_client, "7b", "anna")["display_name"] == "Anna K."
    assert alice.post("/classes/7b/roster/anna/remove", data={"csrf_token": token}).status_code == 303
    assert store.enrolled_students(redis_client, "7b") == []
    assert store.student_for_credential(redis_client, shown["anna"][0]) is None  # revoked
    assert store.latest_results(redis_client, "7b") == {}  # and their data erased
    assert not redis_client.exists(keys.student_series("7b", "anna"))
    assert alice.post("/classes/7b/roster/anna/remove", data={"csrf_token": token}).status_code == 404


def test_print_sheet_has_one_card_per_student_and_print_css(alice):
    for sid in ("anna", "ben", "chris"):
        _enrol(alice, sid)
    page = alice.get("/classes/7b/roster/print")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('class="join-card"') == 3 and html.count("<svg") == 3
    for code, _link in _roster(alice)[1].values():
        assert code in html
    with alice.get("/static/dashboard.css") as response:  # closed: it holds the file open
        css = response.get_data(as_text=True)
    assert "@media print" in css and "break-inside: avoid" in css


def test_enrol_refuses_bad_and_duplicate_ids(alice, redis_client):
    _enrol(alice, "anna")
    assert _enrol(alice, "anna").status_code == 303
    assert "already enrolled" in alice.get("/classes/7b/roster").get_data(as_text=True)
    for bad in ("../x", "", "s1\n", "a b"):
        assert _enrol(alice, bad).status_code == 303
    assert [s["student_id"] for s in store.enrolled_students(redis_client, "7b")] == ["anna"]


def test_another_teacher_cannot_see_or_change_the_roster(client, classes, redis_client):
    credential = credentials.enrol(redis_client, "test-secret", "7b", "anna", "Anna")
    login(client, "bob")
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.get("/classes/7b/roster").status_code == 403
    assert client.get("/classes/7b/roster/print").status_code == 403
    for action in ("rotate", "remove", "rename"):
        assert client.post(f"/classes/7b/roster/anna/{action}", data={"csrf_token": token}).status_code == 403
    assert client.post("/classes/7b/roster", data={"csrf_token": token, "student_id": "eve"}).status_code == 403
    assert store.student_for_credential(redis_client, credential) == store.Enrolment("7b", "anna")
    assert [s["student_id"] for s in store.enrolled_students(redis_client, "7b")] == ["anna"]


@pytest.mark.parametrize("action", ["rotate", "remove", "rename"])
def test_roster_posts_need_the_csrf_token(alice, redis_client, action):
    credential = credentials.enrol(redis_client, "test-secret", "7b", "anna", "Anna")
    assert alice.post(f"/classes/7b/roster/anna/{action}", data={"display_name": "x"}).status_code == 400
    assert store.student_for_credential(redis_client, credential) == store.Enrolment("7b", "anna")
    assert store.enrolment(redis_client, "7b", "anna")["display_name"] == "Anna"


# --- finding 11: full-match ids ---------------------------------------------------------------


def test_ids_ending_in_a_newline_are_refused(redis_client):
    """`re.match` with `$` accepted "7b\\n": such a class was created, keyed with the newline."""
    accounts.create_teacher(redis_client, "alice", "a long password")
    with pytest.raises(accounts.AccountError):
        accounts.create_class(redis_client, "alice", "7b\n", "Class")
    assert store.class_info(redis_client, "7b\n") is None
    assert accounts.get_teacher(redis_client, "alice\n") is None or accounts.normalise("alice\n") == "alice"
    from classroom_contract.messages import is_valid_id

    assert is_valid_id("7b") and not is_valid_id("7b\n") and not is_valid_id("\n7b")


def test_a_stream_id_ending_in_a_newline_does_not_break_the_live_stream(alice, redis_client):
    """`?since=1-0%0A` passed the `$` check and reached XREAD: "Invalid stream ID", a 500 mid-stream."""
    write(redis_client, result(class_id="7b", student_id="s1"))
    response = alice.get("/api/classes/7b/events?since=1-0%0A")
    assert response.status_code == 200
    body = response.get_data(as_text=True)  # raised redis ResponseError on the old code
    assert "error" not in body.lower()
