"""The API serves the built /join page and its assets with a strict CSP (the real API process; no
browser needed here: tests/join drives the real page in Chromium)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support.inference import Api


@pytest.fixture
def api(tmp_path, redis_url):
    site = tmp_path / "site"
    (site / "assets" / "wasm").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>join</title>")
    (site / "assets" / "wasm" / "x.wasm").write_bytes(b"\0asm\1\0\0\0")
    (site / "secret.txt").write_text("outside the assets")
    server = Api(tmp_path, redis_url, join_page_dir=site)
    yield server
    server.stop()


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_page_and_assets_carry_a_strict_csp(api):
    status, headers = _get(f"{api.url}/join")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp
    assert headers["referrer-policy"] == "no-referrer"
    status, headers = _get(f"{api.url}/join/assets/wasm/x.wasm")
    assert status == 200 and headers["content-type"] == "application/wasm"
    assert headers["content-security-policy"] == csp


def test_only_the_assets_folder_is_served(api):
    assert _get(f"{api.url}/join/assets/%2e%2e/secret.txt")[0] == 404
    assert _get(f"{api.url}/join/secret.txt")[0] == 404
