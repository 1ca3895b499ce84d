"""The page's YuNet (services/capture-web/src/yunet.js) is the agent's: the committed weight files are
the shipped ONNX's tensors, and the page downscales frames to the work width as cv2.resize INTER_AREA."""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pytest
from classroom_capture.cvsetup import cv2

from scripts.yunet_web_weights import ONNX_DIR, ONNX_NAME, WEB_DIR, expected_files
from tests.support.join import needs_browser


def test_committed_weights_are_the_shipped_onnx_tensors():
    """Tensor by tensor (names, tfjs layouts, float32 bits), with the checksum and licence beside them."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    manifest = json.loads((WEB_DIR / "yunet.json").read_text())
    blob = (WEB_DIR / "yunet.bin").read_bytes()
    assert manifest["source_sha256"] == hashlib.sha256((ONNX_DIR / ONNX_NAME).read_bytes()).hexdigest()
    assert (WEB_DIR / "SHA256SUMS").read_text() == f"{hashlib.sha256(blob).hexdigest()}  yunet.bin\n"
    assert (WEB_DIR / "LICENSE").read_bytes() == (ONNX_DIR / "LICENSE").read_bytes()
    assert "BSD" in (WEB_DIR / "LICENSE").read_text()
    onnx_tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(ONNX_DIR / ONNX_NAME)).graph.initializer}
    convs = {n for n in onnx_tensors if n.endswith((".weight", ".bias"))}
    assert {t["name"] for t in manifest["tensors"]} == convs
    assert len(convs) == 2 * 53
    total = 0
    for entry in manifest["tensors"]:
        size = int(np.prod(entry["shape"]))
        ours = np.frombuffer(blob, "<f4", size, entry["offset"]).reshape(entry["shape"])
        theirs = onnx_tensors[entry["name"]]
        if entry["name"].endswith(".bias"):
            expected = theirs
        elif entry["name"].endswith("_dw.weight"):
            expected = theirs.transpose(2, 3, 0, 1)  # (C, 1, 3, 3) -> tfjs depthwise [3, 3, C, 1]
        else:
            expected = theirs.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> tfjs conv2d [kh, kw, in, out]
        assert np.array_equal(ours, expected), entry["name"]
        total += size
    # 53,184 in the library less the first layer's 16 x 5 zero taps (27 of its 32 inputs are real)
    assert total == 53_184 - 80 and len(blob) == 4 * total


def test_generator_rewrites_the_committed_files_byte_for_byte():
    pytest.importorskip("onnx")
    for name, data in expected_files().items():
        assert (WEB_DIR / name).read_bytes() == data, name


SCRIPT = """([width, height, outWidth, outHeight, offset]) => {
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rgba = new Uint8ClampedArray(new ArrayBuffer(offset + width * height * 4), offset, width * height * 4);
  rgba.forEach((_, i) => { rgba[i] = Math.floor(random() * 256); });
  const { data, padWidth } = window.yunet.areaDownscale(rgba, width, height, outWidth, outHeight);
  const bgr = [];
  for (let y = 0; y < outHeight; y += 1) bgr.push(...data.subarray(y * padWidth * 3, (y * padWidth + outWidth) * 3));
  return { rgba: Array.from(rgba), bgr };
}"""


def with_browser(test):
    """The browser marks on one test of this module (the weight checks need no browser)."""
    return functools.reduce(lambda marked, mark: mark(marked), needs_browser, test)


@pytest.mark.parametrize(
    "sizes",
    [
        (640, 480, 320, 240, 0),  # 2x2: 32-bit words, two channels at a time
        (640, 480, 320, 240, 1),  # 2x2 on pixels not 4-byte aligned: byte by byte
        (1280, 720, 320, 180, 0),
        (800, 600, 320, 240, 0),
    ],
)
@with_browser
def test_downscale_is_the_agents_inter_area(bench_site, chromium, sizes):
    """The agent detects on cv2.resize(frame, (320, ...), INTER_AREA): YuNet's boxes move with its
    pixels, so the page makes the same pixels (exactly for integer factors, the common cameras)."""
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    result = page.evaluate(SCRIPT, list(sizes))
    page.close()
    width, height, out_width, out_height, _ = sizes
    rgba = np.array(result["rgba"], np.uint8).reshape(height, width, 4)
    expected = cv2.resize(
        np.ascontiguousarray(rgba[:, :, 2::-1]), (out_width, out_height), interpolation=cv2.INTER_AREA
    )
    ours = np.array(result["bgr"], np.int16).reshape(out_height, out_width, 3)
    difference = np.abs(ours - expected)
    if width % out_width == 0 and height % out_height == 0:
        assert difference.max() == 0
    else:
        assert difference.max() <= 1 and difference.mean() < 0.01, (difference.max(), difference.mean())


@with_browser
def test_detection_keeps_no_tensor_behind(bench_site, chromium, placed_frame):
    """The page detects every sample for hours: each detection must free what it allocated (tfjs
    tensors live in the wasm heap, outside the garbage collector)."""
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    page.evaluate("benchInit()")
    counts = [page.evaluate("async u => { await benchDetect(u); return tf.memory().numTensors; }", placed_frame)]
    counts += [page.evaluate("async u => { await benchDetect(u); return tf.memory().numTensors; }", placed_frame)]
    page.close()
    assert counts[0] == counts[1], counts


@pytest.fixture
def placed_frame(bench_site) -> str:
    from classroom_capture.synthetic import FrameMaker, load_fer_faces

    _, folder = bench_site
    cv2.imwrite(str(folder / "leak.png"), FrameMaker(load_fer_faces(), seed=5, no_face_ratio=0.0).next().image)
    return "/leak.png"


CAMERA_PIXELS = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  const video = document.createElement("video");
  video.srcObject = stream;
  video.muted = true;
  await video.play();
  const canvas = document.createElement("canvas");
  const frames = [];
  for (let k = 0; k < 4; k += 1) {
    await new Promise((resolve) => video.requestVideoFrameCallback(resolve));
    const frame = new VideoFrame(video);
    const [width, height] = [frame.displayWidth, frame.displayHeight];
    [canvas.width, canvas.height] = [width, height];
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(frame, 0, 0, width, height);
    const drawn = context.getImageData(0, 0, width, height).data;
    const ours = await window.framePixels(frame, width, height);
    let differing = 0;
    for (let i = 0; i < drawn.length; i += 1) if (drawn[i] !== ours[i]) differing += 1;
    frames.push({ format: frame.format, size: [width, height], differing });
    frame.close();
  }
  stream.getTracks().forEach((track) => track.stop());
  return frames;
}"""


@with_browser
def test_camera_frame_pixels_are_the_canvas_pixels(bench_site, camera_browser):
    """The page reads a camera frame's RGBA with VideoFrame.copyTo (no canvas): the bytes must be the
    ones a canvas drawImage + getImageData gives (what the page read before, and what the parity with
    the agent was measured on). Real Chromium, its fake camera playing a Y4M file (I420)."""
    base, _ = bench_site
    page = camera_browser.new_page()
    page.goto(f"{base}/bench.html")
    frames = page.evaluate(CAMERA_PIXELS)
    page.close()
    assert [f["format"] for f in frames] == ["I420"] * 4  # the copyTo path, not the canvas fallback
    assert all(f["size"] == [640, 480] and f["differing"] == 0 for f in frames), frames
