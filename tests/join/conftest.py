"""Fixtures of the browser capture page's tests: the built page, Debian's headless Chromium, a
private static server for the detector bench page, and FER faces placed in frames."""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from classroom_capture.synthetic import FrameMaker, load_fer_faces

from tests.support.inference import local_predictor  # noqa: F401 - fixture
from tests.support.join import FPS, write_y4m
from tests.support.procs import CHROMIUM, CHROMIUM_ARGS, REPO

WEB = REPO / "services" / "capture-web"


def _npm(*args: str) -> None:
    subprocess.run(["npm", *args], cwd=WEB, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def built_page() -> Path:
    """services/capture-web/dist, built now when scripts/test.sh has not built it already."""
    if not (WEB / "node_modules" / "esbuild").is_dir():
        _npm("ci", "--no-audit", "--no-fund")
    if not (WEB / "dist" / "index.html").is_file():
        _npm("run", "build")
    return WEB / "dist"


@pytest.fixture(scope="session")
def bench_site(built_page, tmp_path_factory):
    """The detector bench page (the page's own detect/crop modules) on a private loopback server;
    put frames under `folder`. Yields (base_url, folder)."""
    folder = tmp_path_factory.mktemp("bench-site")
    node = (
        "require('esbuild').buildSync({entryPoints:['bench/bench.js'],bundle:true,minify:true,"
        f"format:'iife',outfile:{str(folder / 'bench.js')!r}}})"
    )
    subprocess.run(["node", "-e", node], cwd=WEB, check=True, timeout=300)
    shutil.copy(WEB / "bench" / "bench.html", folder / "bench.html")
    shutil.copytree(built_page / "assets" / "model", folder / "model")
    shutil.copytree(built_page / "assets" / "wasm", folder / "wasm")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def playwright():
    """One Playwright for the session (its sync API cannot nest); tests launch browsers from it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _launch_with_camera(playwright, video: Path):
    """Chromium whose camera plays `video` (a Y4M file) and grants access without asking."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )


@pytest.fixture
def camera_browser(playwright, camera):
    """Chromium whose camera plays `camera` (a Y4M file) and grants access without asking."""
    browser = _launch_with_camera(playwright, camera)
    yield browser
    browser.close()


@pytest.fixture
def laptop_camera_browser(playwright, tmp_path):
    """Chromium whose camera plays 30 frames a second, as a laptop's webcam (`camera` plays 4: cheap
    for the tests, but below what the page asks for)."""
    maker = FrameMaker(load_fer_faces(), seed=5, no_face_ratio=0.0, hold=30, fixed_scene=True)
    path = tmp_path / "camera-30fps.y4m"
    write_y4m(path, [maker.next().image for _ in range(30)], fps=30)
    browser = _launch_with_camera(playwright, path)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    """10 s of one student's webcam: ten FER faces, one a second, in the same room."""
    maker = FrameMaker(load_fer_faces(), seed=5, no_face_ratio=0.0, hold=FPS, fixed_scene=True)
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(path, [maker.next().image for _ in range(10 * FPS)])
    return path
