// Detector bench and calibration page (bench/browser_detectors.py drives it): the page's own
// detector module on frames served from 127.0.0.1.
import * as crop from "../src/crop.js";
import { NEUTRAL_NOSE_HEIGHT, analyseFrame, framePixels, loadDetector, tf } from "../src/detect.js";
import { Outbox } from "../src/outbox.js";
import { headPose } from "../src/pose.js";
import * as yunet from "../src/yunet.js";

window.Outbox = Outbox; // for tests/join/test_outbox_js.py
window.crop = crop; // for tests/join/test_crop_js.py
window.yunet = yunet; // for tests/join/test_yunet_web.py
window.tf = tf;
window.framePixels = framePixels; // for tests/join/test_yunet_web.py

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

window.benchDetect = async (url) => {
  const input = await frame(url);
  const t0 = performance.now();
  // As the page: a VideoFrame where the browser has them (the page wraps the camera's frame).
  const source = typeof VideoFrame === "function" ? new VideoFrame(input, { timestamp: 0 }) : input;
  let analysed;
  try {
    analysed = await analyseFrame(source);
  } finally {
    if (source !== input) source.close();
  }
  const { faces, student, square, crop } = analysed;
  const ms = performance.now() - t0; // detection and crop, as the page's detectMs
  const pose = student && headPose(student.landmarks, NEUTRAL_NOSE_HEIGHT); // as join.js sends it
  return { ms, faces, crop: crop && Array.from(crop), square, pose };
};
