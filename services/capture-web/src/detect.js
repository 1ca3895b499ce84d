// In-browser face detection: YuNet, the Python agent's own detector (same network, weights, downscale,
// thresholds and crop geometry, src/yunet.js), on tfjs's wasm backend. Chosen by measurement: the
// page's crops are the agent's, so the served model reads the same emotion (tests/join/test_parity.py,
// bench/join_yunet.py; services/capture-web/README.md). Weights and .wasm files are bundled at build
// time and served by the class server under /join/assets/: nothing is downloaded from anywhere else.
import * as tf from "@tensorflow/tfjs-core";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { cropFace, cropWindow, toGrayWindow } from "./crop.js";
import { timed } from "./timings.js";
import { detectYuNet, loadYuNet } from "./yunet.js";

export { tf }; // for the bench page

/** The agent's YuNet crop geometry (detector.py YuNetDetector.geometry: side 0.99 * max(w, h),
 * centred on the box) and the neutral nose height of its head_pose() (_NEUTRAL_NOSE_HEIGHT). */
export const YUNET_SCALE = 0.99;
export const NEUTRAL_NOSE_HEIGHT = 0.56;
/** cropFace() geometry for a square that is already final. */
export const IDENTITY = { scale: 1, dx: 0, dy: 0 };
let yunet = null;

/** The crop square [x, y, side, side] of a detected face, as the agent's CropGeometry.square(). */
export function cropSquare(face) {
  const [x, y, w, h] = face.box;
  const side = YUNET_SCALE * Math.max(w, h);
  return [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side];
}

export async function loadDetector(assets) {
  setWasmPaths(`${assets}/wasm/`);
  await tf.setBackend("wasm");
  await tf.ready();
  yunet = await loadYuNet(tf, `${assets}/model/yunet`);
  return tf.getBackend();
}

/** Like the Python agent, detect on a copy downscaled to this width (its work_width): a student's
 * face is large, and YuNet's work grows with the pixels. */
export const WORK_WIDTH = 320;

/** [width, height] of a canvas, video or VideoFrame. */
export function frameSize(input) {
  if (input.displayWidth) return [input.displayWidth, input.displayHeight]; // a VideoFrame
  return [input.videoWidth || input.width, input.videoHeight || input.height];
}

const whole = document.createElement("canvas");
let copied = new Uint8ClampedArray(0);
let copyToWorks = true;
/** A camera's frame formats that VideoFrame.copyTo converts to the same RGBA bytes as drawImage +
 * getImageData (checked in Chromium 156: I420 and NV12, limited and full range, BT.601/709 matrices,
 * and the fake camera's frames), at a fifth of the time: no canvas. Others (RGBA frames, which a
 * canvas premultiplies by their alpha, and browsers without copyTo's format option, told by the layout
 * copyTo returns) use the canvas. */
const COPY_FORMATS = new Set(["I420", "NV12"]);

/** The frame's RGBA pixels at full resolution: YuNet's input is the agent's INTER_AREA downscale of
 * them (yunet.js areaDownscale), which a canvas drawImage does not reproduce to the pixel. The
 * returned buffer may be reused by the next call. */
export async function framePixels(input, width, height) {
  if (input.getContext) return input.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  const rect = input.visibleRect;
  if (copyToWorks && COPY_FORMATS.has(input.format) && rect && rect.width === width && rect.height === height) {
    if (copied.length !== width * height * 4) copied = new Uint8ClampedArray(width * height * 4);
    try {
      const layout = await input.copyTo(copied, { format: "RGBA", colorSpace: "srgb" });
      // A browser without copyTo's format option ignores it (an unknown dictionary member: no error)
      // and copies the frame's own planes (I420: three); only one RGBA plane is the canvas's pixels.
      if (layout.length === 1 && layout[0].offset === 0 && layout[0].stride === width * 4) return copied;
    } catch {
      // an older browser (no conversion at all): the canvas, below
    }
    copyToWorks = false; // the canvas from now on
  }
  if (whole.width !== width) whole.width = width;
  if (whole.height !== height) whole.height = height;
  const context = whole.getContext("2d", { willReadFrequently: true });
  context.drawImage(input, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

/** Faces in `input` (canvas, video or VideoFrame), in its pixels: [{box: [x, y, w, h], score,
 * landmarks: five [x, y]}], as the agent's YuNet detector finds them; with the frame's RGBA pixels. */
export async function detectFaces(input) {
  const [width, height] = frameSize(input);
  let started = performance.now();
  const pixels = await framePixels(input, width, height);
  timed("frame pixels", started); // for bench/join_cpu.py
  started = performance.now();
  const faces = await detectYuNet(yunet, pixels, width, height, WORK_WIDTH);
  timed("detector", started);
  return { faces, pixels };
}

let gray = new Uint8Array(0);

/** One frame (a canvas or a VideoFrame) as the Python agent's analyse(): its faces, and the largest
 * one's crop square and 48x48 crop. The crop is cut from the pixels the detector read (one readback
 * a sample); only the crop's window is made grey. */
export async function analyseFrame(frame) {
  const { faces, pixels } = await detectFaces(frame);
  if (!faces.length) return { faces, student: null, square: null, crop: null };
  const student = faces.reduce((a, b) => (a.box[2] * a.box[3] >= b.box[2] * b.box[3] ? a : b));
  const started = performance.now();
  const square = cropSquare(student);
  const [width, height] = frameSize(frame);
  if (gray.length !== width * height) gray = new Uint8Array(width * height);
  toGrayWindow(pixels, gray, width, cropWindow(square, IDENTITY, width, height));
  const crop = cropFace(gray, width, height, square, IDENTITY);
  timed("crop", started);
  return { faces, student, square, crop };
}
