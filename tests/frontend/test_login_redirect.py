"""After login the dashboard goes to `next` only if a browser would stay on this site (no open redirect).

The check is what a browser does with the Location header (WHATWG URL parsing, approximated):
drop tabs and newlines, strip leading/trailing controls and spaces, read backslashes as slashes,
then resolve against the page's URL. The host must stay the dashboard's.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from classroom_dashboard.auth import safe_next
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.frontend import PASSWORD, csrf_from

BASE = "https://dash.example/auth/login"
NEXT_INPUT = re.compile(r'name="next" value="([^"]*)"')

# Pieces that have fooled redirect checks: slashes, backslashes, controls browsers drop, percent
# escapes of them, schemes, userinfo, and Unicode look-alikes of "/" and ".".
PIECES = [
    "/", "//", "\\", "\t", "\n", "\r", " ", "\x00", "\x0b", "\x0c", "\x1f", "\x7f", "%09", "%0a", "%0d", "%2f",
    "%2F", "%5c", "%5C", "%00", "%252f", ":", "@", ".", "?", "#", ";", "evil.example", "javascript:", "https:",
    "http:", "data:", "\u3002", "\uff0f", "\u2044", "\u2215", "\uff3c", "a", "7b", "classes",
]  # fmt: skip
tricky = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


def browser_target(location: str) -> tuple[str, str]:
    """(scheme, host) a browser would go to for `location` on BASE (WHATWG parsing, approximated)."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("".join(map(chr, range(0x21))))
    cleaned = cleaned.replace("\\", "/")
    resolved = urlsplit(urljoin(BASE, cleaned))
    return resolved.scheme, resolved.hostname or ""


@pytest.fixture
def request_context(app):
    with app.test_request_context("/auth/login"):
        yield


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(target=st.one_of(tricky, st.text(max_size=30), tricky.map(lambda s: "/" + s)))
@example(target="/\t/evil.example")
@example(target="/\\evil.example")
@example(target="/%09/evil.example")
@example(target="/%5cevil.example")
@example(target=" //evil.example")
@example(target="/\x00/evil.example")
@example(target="https:evil.example")
@example(target="javascript:alert(1)")
def test_next_never_leaves_the_site(request_context, target):
    location = safe_next(target)
    assert browser_target(location) == ("https", "dash.example"), (target, location)
    assert location in (target, "/")
    # and what is kept is kept only if its decoded form stays on the site as well
    if location == target:
        assert browser_target(unquote(target)) == ("https", "dash.example")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(path=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=8), max_size=4))
def test_paths_on_the_site_are_kept(request_context, path):
    # what login_required puts in ?next= (request.full_path): a path, maybe a query string
    target = "/" + "/".join(path) + "?minutes=60"
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "query",
    ["/%09/example.com", "/%5C/example.com", "%2F%2Fexample.com", "/%0D%0A/example.com", "https://example.com/"],
)
def test_the_login_form_ends_on_the_site(client, classes, query):
    # the reproduction: /auth/login?next=/%09/example.com used to end in Location: //example.com
    page = client.get(f"/auth/login?next={query}").get_data(as_text=True)
    data = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_from(page)}
    data["next"] = NEXT_INPUT.search(page).group(1).replace("&#34;", '"').replace("&amp;", "&")
    answer = client.post("/auth/login", data=data)
    assert answer.status_code == 302
    assert browser_target(answer.headers["Location"]) == ("https", "dash.example")
    assert answer.headers["Location"] == "/"


def test_a_local_next_is_followed(client, classes):
    page = client.get("/auth/login?next=/classes/7b%3Fminutes%3D60").get_data(as_text=True)
    data = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_from(page), "next": "/classes/7b?minutes=60"}
    assert client.post("/auth/login", data=data).headers["Location"] == "/classes/7b?minutes=60"
