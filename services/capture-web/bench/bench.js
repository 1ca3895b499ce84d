// Detector bench and calibration page (bench/browser_detectors.py drives it): the page's own
// detector module on frames served from 127.0.0.1.
import { cropFace, toGray } from "../src/crop.js";
import { IDENTITY, cropSquare, detectFaces, loadDetector } from "../src/detect.js";
import { Outbox } from "../src/outbox.js";

window.Outbox = Outbox; // for tests/join/test_outbox_js.py

const canvas = document.createElement("canvas");

async function frame(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d", { willReadFrequently: true }).drawImage(img, 0, 0);
  return canvas;
}

window.benchInit = () => loadDetector("");

window.benchDetect = async (url, inputSize, scoreThreshold) => {
  const input = await frame(url);
  const t0 = performance.now();
  const faces = await detectFaces(input, inputSize, scoreThreshold);
  const ms = performance.now() - t0;
  let crop = null;
  let square = null;
  if (faces.length) {
    const largest = faces.reduce((a, b) => (a.box[2] * a.box[3] >= b.box[2] * b.box[3] ? a : b));
    const rgba = input.getContext("2d").getImageData(0, 0, input.width, input.height).data;
    const gray = toGray(rgba, input.width, input.height);
    square = cropSquare(largest);
    crop = Array.from(cropFace(gray, input.width, input.height, square, IDENTITY));
  }
  return { ms, faces, crop, square };
};
