"""The browser capture page at /join and its assets, on the API's own origin.

The page (services/capture-web, built into JOIN_PAGE_DIR) reads the student's credential from the
URL fragment, which browsers never send, so no server log ever holds it. Every response carries a
strict Content-Security-Policy: scripts, styles, models and .wasm come from this origin only, the
page may talk to this origin only ('self'), and 'wasm-unsafe-eval' is the one relaxation (compiling
the detector's WebAssembly). A page without its build answers 404 with how to build it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


class _Secured:
    """Adds HEADERS (and the .wasm media type WebAssembly streaming needs) to the static assets."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wasm = scope.get("path", "").endswith(".wasm")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if not (wasm and k == b"content-type")]
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                if wasm:
                    headers.append((b"content-type", b"application/wasm"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_join_page(app: FastAPI, folder: Path) -> None:
    """GET /join (the page) and /join/assets/* (script, style, model weights, .wasm)."""
    index = folder / "index.html"

    @app.get("/join", include_in_schema=False)
    def join_page():
        if not index.is_file():
            return PlainTextResponse(
                f"the capture page is not built: run `npm ci && npm run build` in services/capture-web "
                f"(or set JOIN_PAGE_DIR); looked in {folder}",
                status_code=404,
                headers=HEADERS,
            )
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=HEADERS)

    assets = folder / "assets"
    if assets.is_dir():
        app.mount("/join/assets", _Secured(StaticFiles(directory=assets)), name="join-assets")
    else:
        log.warning("capture page not built (%s missing): /join answers 404", assets)
