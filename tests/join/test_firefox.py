"""The /join page in Firefox: Debian's headless Firefox ESR over Marionette (tests/support/firefox.py).

Students use Firefox too; every other browser test runs Chromium. Here, in Firefox:
- the bench page's detector and crop against the Python agent on the same placed FER faces and to the
  same floors as Chromium's parity test (tests/support/parity.py), on the wasm backend; with which
  pixel path the page takes (a camera's I420 frames through VideoFrame.copyTo, a canvas's BGRA frames
  through the canvas) and that copyTo's RGBA equals the canvas's in Firefox, and that a browser whose
  copyTo lacks the format option (played by a spy) gets the canvas too;
- the real page against the real API, Redis and worker with Firefox's fake camera (a test pattern:
  no face, so face_count 0): consent first, sharing, observations delivered and stored, pause sends
  nothing, no console error and no CSP violation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from classroom_capture.cvsetup import cv2
from classroom_contract import store, tokens

from tests.support.firefox import Firefox, needs_firefox
from tests.support.inference import Api, Worker, new_class
from tests.support.parity import compare_with_agent, place_frames
from tests.support.procs import CHROMIUM, wait_until

pytestmark = needs_firefox

#: Page-scope spies (installed with Firefox.run): each VideoFrame's format, each copyTo's options,
#: and, on /join, each POST body to v1/observations (what left the page).
SPIES = """(() => {
  if (window.spy) return true;
  const spy = (window.spy = { formats: [], copyTo: [], posted: [] });
  const copyTo = VideoFrame.prototype.copyTo;
  VideoFrame.prototype.copyTo = function (destination, options) {
    spy.copyTo.push({ format: this.format, to: options && options.format });
    // spy.withoutFormat: as a browser whose copyTo lacks the format option (it ignores an unknown
    // dictionary member: no error, the frame's own planes copied)
    return copyTo.call(this, destination, spy.withoutFormat ? {} : options);
  };
  const Original = VideoFrame;
  window.VideoFrame = class extends Original {
    constructor(...args) {
      super(...args);
      spy.formats.push(this.format);
    }
  };
  const fetch = window.fetch.bind(window);
  window.fetch = function (url, init) {
    const observations = init && init.method === "POST" && String(url).includes("v1/observations");
    if (observations) spy.posted.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  return true;
})()"""

#: A 640x480 I420 frame (arguments[0]: its URL) as a camera gives one, through the page's
#: framePixels() and through a canvas (drawImage + getImageData): the largest difference in any byte.
I420_PIXELS = """(async () => {
  const data = new Uint8Array(await (await fetch(arguments[0])).arrayBuffer());
  const frame = new VideoFrame(data, { format: "I420", codedWidth: 640, codedHeight: 480, timestamp: 0 });
  const calls = window.spy.copyTo.length;
  const page = (await framePixels(frame, 640, 480)).slice();
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 480;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(frame, 0, 0);
  const drawn = context.getImageData(0, 0, 640, 480).data;
  frame.close();
  let most = 0;
  for (let i = 0; i < drawn.length; i++) most = Math.max(most, Math.abs(drawn[i] - page[i]));
  return { copyTo: window.spy.copyTo.length - calls, most };
})()"""


@pytest.fixture(scope="module")
def firefox(tmp_path_factory):
    with Firefox(tmp_path_factory.mktemp("firefox")) as browser:
        yield browser


@pytest.fixture(scope="module")
def placed(bench_site):
    """test_parity.py's frames: 120 placed FER faces (seed 101) and 20 empty frames, as PNG files; and
    the first 10 faces as raw I420 (what a camera gives), for the copyTo path."""
    frames = place_frames(bench_site[1])
    (bench_site[1] / "i420").mkdir(exist_ok=True)
    for i, (_, frame) in enumerate(frames[:10]):
        (bench_site[1] / "i420" / f"{i}.yuv").write_bytes(cv2.cvtColor(frame.image, cv2.COLOR_BGR2YUV_I420).tobytes())
    return frames


def _steps(timings: dict) -> str:
    """The page's own ms per call of its steps (src/timings.js, window.joinTimings), means."""
    steps = ("frame pixels", "detector", "detector: downscale", "detector: network", "crop")
    return ", ".join(f"{s} {timings[s]['ms'] / timings[s]['count']:.1f}" for s in steps if s in timings)


def _chromium_figures(request, base: str, placed, firefox_results) -> str:
    """Chromium's benchDetect() on the same frames in the same run, for the comparison; '' without it."""
    if not Path(CHROMIUM).exists():
        return ""
    page = request.getfixturevalue("chromium").new_page()
    page.goto(f"{base}/bench.html")
    assert page.evaluate("benchInit()") == "wasm"
    results = [page.evaluate("u => benchDetect(u)", url) for url, _ in placed]
    steps = _steps(page.evaluate("window.joinTimings"))
    page.close()
    pairs = [(c, f) for c, f in zip(results, firefox_results, strict=True) if c["square"] and f["square"]]
    same_squares = sum(c["square"] == f["square"] for c, f in pairs)
    same_crops = sum(c["crop"] == f["crop"] for c, f in pairs)
    times = [r["ms"] for r in results]
    return (
        f"chromium on the same frames: {len(pairs)} faces both found, squares identical {same_squares}, "
        f"crops identical {same_crops}; detection + crop ms/frame median {np.median(times):.1f} "
        f"(p90 {np.percentile(times, 90):.1f}); ms/call: {steps}"
    )


def test_firefox_runs_the_agents_detector_and_crop(bench_site, firefox, placed, local_predictor, request):
    base, _ = bench_site
    firefox.client.navigate(f"{base}/bench.html")
    assert firefox.run("benchInit()") == "wasm"
    assert firefox.run(SPIES)
    parity = compare_with_agent(lambda url: firefox.run("benchDetect(arguments[0])", url), placed, local_predictor)
    spy = firefox.run("window.spy")
    print(parity.summary(f"firefox {firefox.version}"), f"; ms/call: {_steps(firefox.run('window.joinTimings'))}")
    print(_chromium_figures(request, base, placed, parity.results))
    parity.assert_the_agents()
    # The bench wraps a canvas: Firefox makes BGRA VideoFrames of it, which the page reads through a
    # canvas (copyTo's RGBA would skip the canvas's alpha premultiplication): no copyTo here.
    assert set(spy["formats"]) == {"BGRA"} and len(spy["formats"]) == len(placed)
    assert spy["copyTo"] == []

    # A camera's frames are I420 (the /join test below sees Firefox's): those go through copyTo,
    # whose RGBA must be the canvas's to the byte, or the page would detect on other pixels.
    for i in range(10):
        frame = firefox.run(I420_PIXELS, f"/i420/{i}.yuv")
        assert frame == {"copyTo": 1, "most": 0}, (i, frame)

    # A browser with copyTo but without its format option (Firefox ESR 153 has it; no older browser
    # here, so the spy plays one): the page must notice and read the canvas, not I420 bytes as RGBA.
    firefox.run("window.spy.withoutFormat = true")
    assert firefox.run(I420_PIXELS, "/i420/0.yuv") == {"copyTo": 1, "most": 0}  # tried once, not used
    assert firefox.run(I420_PIXELS, "/i420/1.yuv") == {"copyTo": 0, "most": 0}  # the canvas from then on


def _text(firefox: Firefox, element: str) -> str:
    return firefox.run("document.getElementById(arguments[0]).textContent", element)


def _number(firefox: Firefox, element: str) -> int:
    return int(_text(firefox, element))


def _rounds(firefox: Firefox) -> int:
    return int(firefox.run("document.body.dataset.rounds || '0'"))


@pytest.fixture
def system(redis_url, tmp_path, built_page):
    api = Api(tmp_path, redis_url, join_page_dir=built_page)
    worker = Worker(tmp_path, redis_url)
    yield api, new_class(redis_url, name="Physics 2B")
    worker.stop()
    api.stop()


def test_firefox_joins_shares_and_pauses(system, firefox, redis_client):
    api, klass = system
    credential = klass.credential("ada")
    firefox.client.navigate(f"{api.url}/join#{tokens.display(credential).lower()}")
    firefox.wait_for("!document.getElementById('consent').hidden", what="the consent screen")
    assert firefox.run(SPIES)

    # Consent first: who and what, in plain words; the camera is off and nothing is sent.
    assert _text(firefox, "student-name") == "ada" and _text(firefox, "class-name") == "Physics 2B"
    assert "48 by 48" in _text(firefox, "consent")
    assert firefox.run("location.hash") == ""  # the credential left the address bar at once
    assert firefox.run("document.getElementById('preview').srcObject") is None

    firefox.client.find_element("id", "agree").click()
    firefox.wait_for("document.getElementById('state').textContent === 'SHARING with your class'", what="sharing")
    wait_until(lambda: _number(firefox, "sent") >= 4, timeout=90, what="observations delivered")

    # Pause: the camera stops, and nothing more is captured or sent (four delivery rounds, no sleep).
    firefox.client.find_element("id", "toggle").click()
    firefox.wait_for("document.getElementById('state').textContent === 'PAUSED: nothing is being sent'")
    assert firefox.run("document.getElementById('preview').srcObject") is None
    rounds = _rounds(firefox)
    wait_until(lambda: _rounds(firefox) >= rounds + 1, timeout=30, what="the counters to catch up with the pause")
    posts_at_pause, waiting_at_pause = len(firefox.run("window.spy.posted")), _number(firefox, "waiting")
    rounds = _rounds(firefox)
    wait_until(lambda: _rounds(firefox) >= rounds + 4, timeout=30, what="four delivery rounds while paused")
    spy = firefox.run("window.spy")
    assert len(spy["posted"]) == posts_at_pause and _number(firefox, "waiting") == waiting_at_pause
    sent = _number(firefox, "sent")

    assert firefox.console_errors() == []
    # ... and would have seen one: an inline script, which the page's CSP blocks, and a console.error().
    firefox.run("document.head.appendChild(document.createElement('script')).textContent = 'window.x = 1'")
    firefox.run("console.error('a test error')")
    seen = firefox.console_errors()
    assert any("CSP" in e for e in seen) and any("a test error" in e for e in seen), seen
    # Firefox's camera gives I420 frames: the page read every sample's pixels through copyTo (RGBA).
    samples = len(spy["formats"])
    assert samples >= sent and set(spy["formats"]) == {"I420"}
    assert spy["copyTo"] == [{"format": "I420", "to": "RGBA"}] * samples
    # Never a frame: {"observations": [...]}, no student id; the test pattern has no face.
    for body in spy["posted"]:
        assert set(body) == {"observations"}
        for o in body["observations"]:
            assert set(o) == {"observation_id", "captured_at", "face_count"} and o["face_count"] == 0

    def stored():
        return store.student_series(redis_client, klass.class_id, "ada")

    wait_until(lambda: len(stored()) >= sent, timeout=90, what="the worker to store every observation")
    ids = [r.observation_id for r in stored()]
    assert len(ids) == len(set(ids)) == sent
    assert {o["observation_id"] for body in spy["posted"] for o in body["observations"]} >= set(ids)
    print(f"firefox /join: {samples} samples, {sent} observations delivered and stored (face_count 0)")
