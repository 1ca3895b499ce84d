// In-browser face detection: @vladmandic/face-api's tiny face detector and its tiny 68-point
// landmark model on tfjs's wasm backend. Chosen by measurement (bench/browser_detectors.py, see
// services/capture-web/README.md). Model weights and .wasm files are bundled at build time and served
// by the class server under /join/assets/: nothing is downloaded from anywhere else.
import * as faceapi from "@vladmandic/face-api/dist/face-api.esm.js";
import { cropFace, cropWindow, toGrayWindow } from "./crop.js";
import { detectYuNet, loadYuNet } from "./yunet.js";

/** Which detector the page runs: "yunet" (the Python agent's own network, weights and geometry, see
 * src/yunet.js) or "face-api" (the tiny face detector + tiny 68-landmark model, below). */
export let detectorName = "yunet";
let yunet = null;
/** The agent's YuNet crop geometry (detector.py YuNetDetector.geometry: side 0.99 * max(w, h),
 * centred on the box) and neutral nose height (detector.py _NEUTRAL_NOSE_HEIGHT). */
export const YUNET_SCALE = 0.99;
export const YUNET_NEUTRAL_NOSE_HEIGHT = 0.56;

/** The crop square, calibrated like the Python agent's detectors on FER faces placed in frames
 * (bench/browser_detectors.py, 200 faces, medians against the placed FER box):
 * - from the detector's box: side 0.915 * max(w, h), centre shifted by (0.039, -0.086) * max(w, h);
 * - from the landmarks: centre 0.025 (right) and 0.296 (down) eye-mouth distances from the eyes'
 *   midpoint, side 2.503 eye-mouth distances;
 * - the square is 0.7 * landmark square + 0.3 * box square: the tiny detector's box jitters more
 *   than the landmarks, and the blend gave the Python agent's emotion most often (93% vs 89% for
 *   the box alone, on the calibration faces; tests/join/test_parity.py measures unseen faces).
 * NEUTRAL_NOSE_HEIGHT: median nose height between eye line and mouth line on the same faces. */
export const BOX_GEOMETRY = { scale: 0.915, dx: 0.039, dy: -0.086 };
export const LANDMARK_GEOMETRY = { right: 0.025, down: 0.296, side: 2.503 };
export const LANDMARK_WEIGHT = 0.7;
export const FACE_API_NEUTRAL_NOSE_HEIGHT = 0.54;
export const neutralNoseHeight = () => (detectorName === "yunet" ? YUNET_NEUTRAL_NOSE_HEIGHT : FACE_API_NEUTRAL_NOSE_HEIGHT);
/** cropFace() geometry for a square that is already final. */
export const IDENTITY = { scale: 1, dx: 0, dy: 0 };

/** The crop square [x, y, side, side] of a detected face (see above). */
export function cropSquare(face) {
  const [x, y, w, h] = face.box;
  if (detectorName === "yunet") {
    const side = YUNET_SCALE * Math.max(w, h);
    return [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side];
  }
  const size = Math.max(w, h);
  const box = {
    cx: x + w / 2 + BOX_GEOMETRY.dx * size,
    cy: y + h / 2 + BOX_GEOMETRY.dy * size,
    side: BOX_GEOMETRY.scale * size,
  };
  const [rightEye, leftEye, , mouthR, mouthL] = face.landmarks;
  const eyes = [(rightEye[0] + leftEye[0]) / 2, (rightEye[1] + leftEye[1]) / 2];
  const mouth = [(mouthR[0] + mouthL[0]) / 2, (mouthR[1] + mouthL[1]) / 2];
  const em = Math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1]);
  const marks = {
    cx: eyes[0] + LANDMARK_GEOMETRY.right * em,
    cy: eyes[1] + LANDMARK_GEOMETRY.down * em,
    side: LANDMARK_GEOMETRY.side * em,
  };
  const mix = (k) => LANDMARK_WEIGHT * marks[k] + (1 - LANDMARK_WEIGHT) * box[k];
  const side = mix("side");
  return [mix("cx") - side / 2, mix("cy") - side / 2, side, side];
}

/** inputSize 224 with score >= 0.3: 172 of 200 placed FER faces (0.5: 158; 160 px: 141; 320 px
 * was slower and found fewer), no false alarm on empty frames (tests/join); on the frame downscaled
 * to WORK_WIDTH: 174 of 200. */
export const INPUT_SIZE = 224;
export const MIN_SCORE = 0.3;

export async function loadDetector(assets, name = detectorName) {
  detectorName = name;
  faceapi.tf.setWasmPaths(`${assets}/wasm/`);
  await faceapi.tf.setBackend("wasm");
  await faceapi.tf.ready();
  if (name === "yunet") {
    yunet = await loadYuNet(faceapi.tf, `${assets}/model/yunet`);
    return faceapi.tf.getBackend();
  }
  useThinConcat(faceapi.tf);
  await faceapi.nets.tinyFaceDetector.loadFromUri(`${assets}/model`);
  await faceapi.nets.faceLandmark68TinyNet.loadFromUri(`${assets}/model`);
  return faceapi.tf.getBackend();
}

/** tfjs-backend-wasm's Concat copies with one typed-array view per row and input. face-api's
 * normalize() concatenates three [1, 224, 224, 1] mean tensors along the channels before every
 * detection (and [1, 112, 112, 1] ones before the landmarks): 160,000 views a sample, the largest
 * single cost after the networks (about 10 ms a sample and much of the garbage collection, measured
 * with Chromium's profiler). Thin inputs are copied element by element instead; the result is the
 * same copy. Other concatenations go to tfjs's own kernel. */
const THIN = 16;

function useThinConcat(tf) {
  const original = tf.getKernel("Concat", "wasm");
  if (!original || original.thin) return;
  const kernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const axis = tf.util.parseAxisParam(attrs.axis, inputs[0].shape)[0];
    const parts = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const widths = parts.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
    if (parts.length < 2 || parts[0].dtype === "string" || Math.max(...widths) > THIN) return original.kernelFunc(args);
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const shape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
    const out = backend.makeOutput(shape, inputs[0].dtype);
    const rows = tf.util.sizeFromShape(parts[0].shape.slice(0, axis));
    const dst = backend.typedArrayFromHeap(out); // views taken after makeOutput (the heap may grow)
    const srcs = parts.map((t) => backend.typedArrayFromHeap(t));
    if (widths.every((w) => w === 1)) {
      // One value per row and input (normalize()'s case): a strided copy per input.
      for (let p = 0; p < srcs.length; p += 1) {
        const src = srcs[p];
        for (let row = 0, k = p; row < rows; row += 1, k += srcs.length) dst[k] = src[row];
      }
      return out;
    }
    let k = 0;
    for (let row = 0; row < rows; row += 1) {
      for (let p = 0; p < srcs.length; p += 1) {
        const src = srcs[p];
        for (let i = row * widths[p], end = i + widths[p]; i < end; i += 1) dst[k++] = src[i];
      }
    }
    return out;
  };
  tf.unregisterKernel("Concat", "wasm");
  tf.registerKernel({ ...original, kernelFunc, thin: true });
}

const mean = (points) => [
  points.reduce((s, p) => s + p.x, 0) / points.length,
  points.reduce((s, p) => s + p.y, 0) / points.length,
];

/** The Python agent's five landmarks from the 68: eye centres, nose tip, mouth corners. */
export function fivePoints(positions) {
  const xy = (p) => [p.x, p.y];
  return [mean(positions.slice(36, 42)), mean(positions.slice(42, 48)), xy(positions[30]), xy(positions[48]), xy(positions[54])];
}

/** Like the Python agent, detect on a copy downscaled to this width: a student's face is large, and
 * reading back and resizing a 640x480 frame in tfjs costs more than the detector's own work. */
export const WORK_WIDTH = 320;
const small = document.createElement("canvas");

/** [width, height] of a canvas, video or VideoFrame. */
export function frameSize(input) {
  if (input.displayWidth) return [input.displayWidth, input.displayHeight]; // a VideoFrame
  return [input.videoWidth || input.width, input.videoHeight || input.height];
}

const whole = document.createElement("canvas");

/** The frame's RGBA pixels at full resolution: YuNet's input is the agent's INTER_AREA downscale of
 * them (yunet.js areaDownscale), which a canvas drawImage does not reproduce to the pixel. */
function framePixels(input, width, height) {
  if (input.getContext) return input.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  if (whole.width !== width) whole.width = width;
  if (whole.height !== height) whole.height = height;
  const context = whole.getContext("2d", { willReadFrequently: true });
  context.drawImage(input, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

function downscaled(input) {
  const [width, height] = frameSize(input);
  if (width <= WORK_WIDTH && input.getContext) return [input, 1];
  const factor = WORK_WIDTH / width;
  const smallHeight = Math.round(height * factor);
  if (small.width !== WORK_WIDTH) small.width = WORK_WIDTH; // resizing reallocates: only on a change
  if (small.height !== smallHeight) small.height = smallHeight;
  const context = small.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingQuality = "medium";
  context.drawImage(input, 0, 0, small.width, small.height);
  return [small, factor];
}

/** Faces in `input` (canvas or video), in its pixels: [{box: [x, y, w, h], score, landmarks: five [x, y]}]. */
export async function detectFaces(input, inputSize = INPUT_SIZE, scoreThreshold = MIN_SCORE) {
  if (detectorName === "yunet") {
    const [width, height] = frameSize(input);
    return detectYuNet(yunet, framePixels(input, width, height), width, height, WORK_WIDTH);
  }
  const [image, factor] = downscaled(input);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold });
  const found = await faceapi.detectAllFaces(image, options).withFaceLandmarks(true);
  const up = (v) => v / factor;
  return found.map((r) => {
    const b = r.detection.box;
    return {
      box: [up(b.x), up(b.y), up(b.width), up(b.height)],
      score: r.detection.score,
      landmarks: fivePoints(r.landmarks.positions).map(([x, y]) => [up(x), up(y)]),
    };
  });
}

const windowCanvas = document.createElement("canvas");
let gray = new Uint8Array(0);

/** One frame (a canvas or a VideoFrame) as the Python agent's analyse(): its faces, and the largest
 * one's crop square and 48x48 crop. The frame is never converted whole: the detector gets a copy at
 * WORK_WIDTH, and only the crop's window is read back at full resolution and made grey. */
export async function analyseFrame(frame, inputSize = INPUT_SIZE, scoreThreshold = MIN_SCORE) {
  const faces = await detectFaces(frame, inputSize, scoreThreshold);
  if (!faces.length) return { faces, student: null, square: null, crop: null };
  const student = faces.reduce((a, b) => (a.box[2] * a.box[3] >= b.box[2] * b.box[3] ? a : b));
  const square = cropSquare(student);
  const [width, height] = frameSize(frame);
  const [x0, y0, x1, y1] = cropWindow(square, IDENTITY, width, height);
  windowCanvas.width = x1 - x0;
  windowCanvas.height = y1 - y0;
  const context = windowCanvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(frame, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
  if (gray.length !== width * height) gray = new Uint8Array(width * height);
  toGrayWindow(context.getImageData(0, 0, x1 - x0, y1 - y0).data, gray, width, [x0, y0, x1, y1]);
  return { faces, student, square, crop: cropFace(gray, width, height, square, IDENTITY) };
}
