"""Sessions can be ended for good: a copied session cookie dies with logout and with a password change or reset.

The attacker here holds a copy of alice's cookie (stolen from a shared computer, a backup, a
proxy log): a second test client with the same cookie value.
"""

from __future__ import annotations

import hashlib
import time

from classroom_dashboard import accounts, cli, keys

from tests.support.frontend import PASSWORD, csrf_from, login

COOKIE = "classroom_session"
NEW_PASSWORD = "a new and long password"


def copy_of(app, client):
    """A second client carrying the same session cookie as `client` (the attacker's copy)."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


def test_a_copied_cookie_works_until_logout_then_never_again(app, alice):
    thief = copy_of(app, alice)
    assert logged_in(thief)  # the copy is as good as the original while the session lives
    csrf = csrf_from(alice.get("/").get_data(as_text=True))
    assert alice.post("/auth/logout", data={"csrf_token": csrf}).status_code == 302
    assert not logged_in(alice)
    answer = thief.get("/")
    assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"]
    assert thief.get("/api/classes/7b/students").status_code == 401


def test_logout_ends_only_that_session(app, classes):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "alice")
    login(phone, "alice")
    csrf = csrf_from(laptop.get("/").get_data(as_text=True))
    laptop.post("/auth/logout", data={"csrf_token": csrf})
    assert not logged_in(laptop) and logged_in(phone)


def test_changing_the_password_ends_every_other_session(app, alice, redis_client):
    other_browser = app.test_client()
    login(other_browser, "alice")
    thief = copy_of(app, alice)
    assert logged_in(thief) and logged_in(other_browser)

    csrf = csrf_from(alice.get("/auth/password").get_data(as_text=True))
    form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD}
    answer = alice.post("/auth/password", data={**form, "repeat_password": NEW_PASSWORD})
    assert answer.status_code == 302
    assert logged_in(alice)  # the teacher who changed it stays logged in, on a fresh session
    assert not logged_in(thief) and not logged_in(other_browser)
    assert accounts.check_password(redis_client, "alice", NEW_PASSWORD)
    assert login(app.test_client(), "alice", PASSWORD).status_code == 401
    assert login(app.test_client(), "alice", NEW_PASSWORD).status_code == 302


def test_a_wrong_current_password_changes_nothing(app, alice, redis_client):
    thief = copy_of(app, alice)
    csrf = csrf_from(alice.get("/auth/password").get_data(as_text=True))
    form = {"csrf_token": csrf, "current_password": "not it", "new_password": NEW_PASSWORD}
    answer = alice.post("/auth/password", data={**form, "repeat_password": NEW_PASSWORD})
    assert answer.status_code == 400 and "Wrong" in answer.get_data(as_text=True)
    assert accounts.check_password(redis_client, "alice", PASSWORD)
    assert logged_in(thief)  # nothing was revoked either


def test_a_password_reset_from_the_command_line_ends_every_session(app, alice, redis_url):
    thief = copy_of(app, alice)
    argv = ["--redis-url", redis_url, "create-teacher", "--username", "alice", "--password", NEW_PASSWORD]
    assert cli.main([*argv, "--replace"]) == 0
    assert not logged_in(alice) and not logged_in(thief)


def test_a_cookie_without_a_server_side_session_is_refused(app, classes):
    # A cookie signed with the right key but made before server-side sessions (or forged by someone
    # who learnt an old key): without a session record, nothing vouches for it.
    forged = app.test_client()
    with forged.session_transaction() as session:
        session["user"] = "alice"
    assert not logged_in(forged)


def test_redis_holds_only_the_hash_of_the_session_id(app, alice, redis_client):
    with alice.session_transaction() as session:
        session_id = session["sid"]
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    assert redis_client.hget(keys.dashboard_session(digest), "username") == b"alice"
    assert 0 < redis_client.ttl(keys.dashboard_session(digest)) <= app.permanent_session_lifetime.total_seconds()
    for key in redis_client.scan_iter("*"):
        assert session_id.encode() not in key
        if redis_client.type(key) == b"hash":
            assert all(session_id.encode() not in value for value in redis_client.hvals(key))


def test_an_open_live_stream_ends_when_its_session_is_revoked(redis_url, classes):
    from classroom_dashboard import create_app

    app = create_app({"SECRET_KEY": "t", "REDIS_URL": redis_url, "SSE_BLOCK_MS": 100, "SSE_MAX_SECONDS": 60})
    alice = app.test_client()
    login(alice, "alice")
    thief = copy_of(app, alice)
    stream = thief.get("/api/classes/7b/events", buffered=False)
    chunks = iter(stream.response)
    assert b"event: hello" in next(chunks)
    csrf = csrf_from(alice.get("/").get_data(as_text=True))
    alice.post("/auth/logout", data={"csrf_token": csrf})
    started = time.monotonic()
    for _ in chunks:  # keepalives until the stream notices; it must end long before SSE_MAX_SECONDS
        assert time.monotonic() - started < 10, "the stream outlived its session"
    stream.close()


def test_logging_in_again_ends_the_session_it_replaces(app, alice):
    thief = copy_of(app, alice)
    assert login(alice, "alice").status_code == 302  # the same browser, a second login
    assert logged_in(alice) and not logged_in(thief)
