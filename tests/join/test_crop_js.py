"""The page makes grey only the crop's window of a frame (crop.js cropWindow), and blurs only the
pixels the 48x48 sampling reads: the crop must be the one made from the whole grey
frame, for every square, near or past the frame's edges too, whatever the rest of the frame's buffer
holds; and it must stay the Python agent's crop_face() of the same square."""

from __future__ import annotations

import numpy as np
from classroom_capture.detector import CropGeometry, Face, crop_face

from tests.support.join import needs_browser

pytestmark = needs_browser

SCRIPT = """() => {
  const { cropFace, cropWindow, toGray, toGrayWindow } = window.crop;
  const IDENTITY = { scale: 1, dx: 0, dy: 0 };
  const [width, height] = [640, 480];
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rgba = new Uint8ClampedArray(width * height * 4).map(() => Math.floor(random() * 256));
  const whole = toGray(rgba, width, height);
  const squares = [];
  for (let i = 0; i < 300; i += 1) {
    const side = 2 + random() * 500;  // from a 2 px square (no blur) to one larger than the frame
    squares.push([random() * (width + side) - side, random() * (height + side) - side, side, side]);
  }
  squares.push([-900, -900, 100, 100], [5000, 20, 60, 60], [0, 0, 640, 480], [600, 440, 200, 200]);
  let differing = 0;
  const crops = [];
  let minWindow = 1;
  for (const [n, square] of squares.entries()) {
    const [x0, y0, x1, y1] = cropWindow(square, IDENTITY, width, height);
    minWindow = Math.min(minWindow, ((x1 - x0) * (y1 - y0)) / (width * height));
    const gray = new Uint8Array(width * height).fill(n % 2 ? 255 : 0);  // stale content elsewhere
    toGrayWindow(rgba, gray, width, [x0, y0, x1, y1]);
    const a = cropFace(whole, width, height, square, IDENTITY);
    const b = cropFace(gray, width, height, square, IDENTITY);
    if (a.some((v, i) => v !== b[i])) differing += 1;
    crops.push(Array.from(b));
  }
  return { squares, differing, minWindow, crops, gray: Array.from(whole) };
}"""


def test_the_crop_from_its_window_equals_the_crop_from_the_whole_frame(bench_site, chromium):
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    result = page.evaluate(SCRIPT)
    page.close()
    assert result["differing"] == 0, result["differing"]
    assert result["minWindow"] < 0.01  # small squares read a small window: the point of it
    gray = np.array(result["gray"], dtype=np.uint8).reshape(480, 640)
    inside = [
        (square, crop)
        for square, crop in zip(result["squares"], result["crops"], strict=True)
        if square[0] >= 20 and square[1] >= 20 and square[0] + square[2] <= 620 and square[1] + square[3] <= 460
    ]
    errors = [
        np.abs(
            crop_face(gray, Face(tuple(square), 1.0), CropGeometry()).astype(int) - np.reshape(crop, (48, 48))
        ).mean()
        for square, crop in inside
    ]
    # Grey levels, mean over the crop, as the parity test, on squares whose blur stays inside the frame (cv2
    # reflects the frame's edge when it blurs, the page replicates it); a pixel the page forgot to blur
    # would be 0 and cost far more.
    assert len(inside) >= 20 and max(errors) < 1.0, (len(inside), max(errors))
