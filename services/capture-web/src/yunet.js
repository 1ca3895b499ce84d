// YuNet (libfacedetection v3, BSD-3-Clause) in tfjs: the Python agent's detector (yuface, or
// cv2.FaceDetectorYN with the shipped ONNX) with the same float32 weights (models/yunet/, written
// from the agent's ONNX by scripts/yunet_web_weights.py), mirroring the numpy reference forward and
// decode of scripts/yunet_from_yuface.py. The same downscale (areaDownscale: cv2.INTER_AREA),
// thresholds and rounding give the agent's boxes, hence its crop square.

import { timed } from "./timings.js";

/** yuface's own candidate filter and suppression (scripts/yunet_from_yuface.py YUFACE_*), then the
 * agent's min_score (YuNetDetector / YuNetOpenCVDetector), applied to yuface's whole percents. */
export const CANDIDATE_SCORE = 0.2;
export const NMS_THRESHOLD = 0.45;
export const TOP_K = 1000;
export const KEEP_TOP_K = 512;
export const MIN_SCORE_PERCENT = 60;
const STRIDES = [8, 16, 32];
const HEADS = { cls: 1, bbox: 4, obj: 1, kps: 10 };

/** The weights (models/yunet/yunet.json + yunet.bin under `url`) as tfjs tensors by name. */
export async function loadYuNet(tf, url) {
  const manifest = await (await fetch(`${url}/yunet.json`)).json();
  const buffer = await (await fetch(`${url}/${manifest.weights}`)).arrayBuffer();
  const weights = {};
  for (const { name, shape, offset } of manifest.tensors) {
    const size = shape.reduce((a, b) => a * b, 1);
    weights[name] = tf.keep(tf.tensor(new Float32Array(buffer, offset, size), shape, "float32"));
  }
  return { tf, weights };
}

/** RGBA pixels (width x height) downscaled by `factor` like cv2.resize(..., INTER_AREA) of the BGR
 * frame, as the padded network input: float32 HWC BGR, zero-padded to multiples of 32 (what
 * libfacedetection feeds its first layer). Integer factors are OpenCV's exact area average (2x2:
 * (sum + 2) >> 2); other factors use the same area weights, rounded half to even like cvRound. */
export function areaDownscale(rgba, width, height, outWidth, outHeight) {
  const padW = Math.ceil(outWidth / 32) * 32;
  const padH = Math.ceil(outHeight / 32) * 32;
  const out = new Float32Array(padH * padW * 3);
  const sx = width / outWidth;
  const sy = height / outHeight;
  if (sx === 2 && sy === 2) return { data: halve(rgba, width, outWidth, outHeight, padW, out), padWidth: padW, padHeight: padH };
  if (Number.isInteger(sx) && Number.isInteger(sy)) {
    const area = sx * sy;
    for (let y = 0; y < outHeight; y += 1) {
      for (let x = 0; x < outWidth; x += 1) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let dy = 0; dy < sy; dy += 1) {
          let i = ((y * sy + dy) * width + x * sx) * 4;
          for (let dx = 0; dx < sx; dx += 1, i += 4) {
            r += rgba[i];
            g += rgba[i + 1];
            b += rgba[i + 2];
          }
        }
        const o = (y * padW + x) * 3;
        if (area === 4) {
          out[o] = (b + 2) >> 2;
          out[o + 1] = (g + 2) >> 2;
          out[o + 2] = (r + 2) >> 2;
        } else {
          out[o] = roundHalfEven(b / area);
          out[o + 1] = roundHalfEven(g / area);
          out[o + 2] = roundHalfEven(r / area);
        }
      }
    }
    return { data: out, padWidth: padW, padHeight: padH };
  }
  const xs = areaWeights(width, outWidth);
  const ys = areaWeights(height, outHeight);
  for (let y = 0; y < outHeight; y += 1) {
    for (let x = 0; x < outWidth; x += 1) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [sy0, wy] of ys[y]) {
        for (const [sx0, wx] of xs[x]) {
          const i = (sy0 * width + sx0) * 4;
          const w = wx * wy;
          r += rgba[i] * w;
          g += rgba[i + 1] * w;
          b += rgba[i + 2] * w;
        }
      }
      const o = (y * padW + x) * 3;
      out[o] = roundHalfEven(b);
      out[o + 1] = roundHalfEven(g);
      out[o + 2] = roundHalfEven(r);
    }
  }
  return { data: out, padWidth: padW, padHeight: padH };
}

/** The 2x2 case of areaDownscale (640x480 -> 320x240, the common camera): each output the rounded
 * mean of its 2x2 block, (sum + 2) >> 2, as OpenCV's INTER_AREA for a factor of 2. Reads a pixel as
 * one 32-bit word and adds two channels at once in 16-bit lanes (4 x 255 fits): R+B, then G+A. */
function halve(rgba, width, outWidth, outHeight, padW, out) {
  if (rgba.byteOffset % 4 !== 0 || !LITTLE_ENDIAN) return halveBytes(rgba, width, outWidth, outHeight, padW, out);
  const words = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length >> 2);
  const M = 0x00ff00ff;
  for (let y = 0; y < outHeight; y += 1) {
    let i = 2 * y * width;
    let o = y * padW * 3;
    for (const end = o + outWidth * 3; o < end; o += 3, i += 2) {
      const a = words[i];
      const b = words[i + 1];
      const c = words[i + width];
      const d = words[i + width + 1];
      const rb = (a & M) + (b & M) + (c & M) + (d & M);
      const ga = ((a >>> 8) & M) + ((b >>> 8) & M) + ((c >>> 8) & M) + ((d >>> 8) & M);
      out[o] = ((rb >>> 16) + 2) >> 2;
      out[o + 1] = ((ga & 0xffff) + 2) >> 2;
      out[o + 2] = ((rb & 0xffff) + 2) >> 2;
    }
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function halveBytes(rgba, width, outWidth, outHeight, padW, out) {
  const row = width * 4;
  for (let y = 0; y < outHeight; y += 1) {
    let i = 2 * y * row;
    let o = y * padW * 3;
    for (const end = o + outWidth * 3; o < end; o += 3, i += 8) {
      const j = i + row;
      out[o] = (rgba[i + 2] + rgba[i + 6] + rgba[j + 2] + rgba[j + 6] + 2) >> 2;
      out[o + 1] = (rgba[i + 1] + rgba[i + 5] + rgba[j + 1] + rgba[j + 5] + 2) >> 2;
      out[o + 2] = (rgba[i] + rgba[i + 4] + rgba[j] + rgba[j + 4] + 2) >> 2;
    }
  }
  return out;
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.min(255, Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r);
}

/** Per output pixel, the source pixels it covers and their share (summing to 1). */
function areaWeights(size, outSize) {
  const scale = size / outSize;
  const table = [];
  for (let o = 0; o < outSize; o += 1) {
    const start = o * scale;
    const end = Math.min(size, start + scale);
    const cells = [];
    for (let s = Math.floor(start); s < end; s += 1) {
      const cover = Math.min(end, s + 1) - Math.max(start, s);
      if (cover > 1e-3) cells.push([s, cover / scale]);
    }
    table.push(cells);
  }
  return table;
}

/** Raw head outputs per stride ({cls: {8: Float32Array, ...}, ...} with their grid sizes), from the
 * padded input: scripts/yunet_from_yuface.py forward() in tfjs ops. */
export function forward(net, input) {
  const { tf, weights: w } = net;
  const conv = (x, name, relu) => {
    const filter = w[`${name}.weight`];
    const bias = w[`${name}.bias`];
    const activation = relu ? "relu" : "linear";
    if (name.endsWith("_dw")) return tf.fused.depthwiseConv2d({ x, filter, strides: 1, pad: 1, bias, activation });
    return tf.fused.conv2d({ x, filter, strides: 1, pad: "valid", bias, activation });
  };
  const dp = (x, prefix, relu = true) => conv(conv(x, `${prefix}_pw`, false), `${prefix}_dw`, relu);
  const unit = (x, model) => dp(dp(x, `backbone__${model}_dp1`), `backbone__${model}_dp2`);
  const pool = (x) => tf.maxPool(x, 2, 2, "valid");
  // Nearest 2x upsampling: each value copied to a 2x2 block (out[y][x] = in[y >> 1][x >> 1], so the
  // same values as a tile). tfjs-wasm's Tile was the forward's largest cost (6-D, element by element).
  const up = (x) => tf.image.resizeNearestNeighbor(x, [2 * x.shape[1], 2 * x.shape[2]]);
  return tf.tidy(() => {
    let x = tf.tensor4d(input.data, [1, input.padHeight, input.padWidth, 3]);
    const first = w["backbone__model0_pw.weight"];
    x = tf.fused.conv2d({ x, filter: first, strides: 2, pad: 1, bias: w["backbone__model0_pw.bias"], activation: "relu" });
    x = pool(dp(x, "backbone__model0_dp"));
    x = unit(unit(x, "model1"), "model2");
    const f8 = unit(pool(x), "model3");
    const f16 = unit(pool(f8), "model4");
    let f32 = unit(pool(f16), "model5");
    f32 = dp(f32, "neck__lateral_convs__2");
    const n16 = dp(tf.add(up(f32), f16), "neck__lateral_convs__1");
    const n8 = dp(tf.add(up(n16), f8), "neck__lateral_convs__0");
    const features = { 8: n8, 16: n16, 32: f32 };
    const out = {};
    for (const head of Object.keys(HEADS)) {
      out[head] = STRIDES.map((s, level) => dp(features[s], `bbox_head__multi_level_${head}__${level}`, false));
    }
    return out;
  });
}

const f32 = Math.fround;
const sigmoid = (v) => f32(1 / (1 + Math.exp(-Math.max(-88.376, Math.min(88.376, v)))));

function iou(a, b) {
  const ix = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const iy = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Rows [score, x, y, w, h, 10 landmark coordinates] at the work width, rounded like yuface's
 * (whole pixels by C truncation, whole percents) and kept from MIN_SCORE_PERCENT: decode() of
 * scripts/yunet_from_yuface.py, then the agent's truncation and min_score. */
export function decode(heads, shapes) {
  // Scores of every anchor; boxes only for the candidates (score >= CANDIDATE_SCORE, a few dozen of
  // the 1,680 anchors of a 320x240 frame), landmarks only for the kept: the same arithmetic, in order.
  const candidates = [];
  let first = 0;
  STRIDES.forEach((s, level) => {
    const [rows, cols] = shapes[level];
    const cls = heads.cls[level];
    const obj = heads.obj[level];
    for (let i = 0; i < rows * cols; i += 1) {
      const score = f32(Math.sqrt(f32(sigmoid(cls[i]) * sigmoid(obj[i]))));
      if (score >= CANDIDATE_SCORE) candidates.push({ score, order: first + i, s, level, i, r: Math.floor(i / cols), c: i % cols });
    }
    first += rows * cols;
  });
  candidates.sort((a, b) => b.score - a.score || a.order - b.order);
  const boxes = candidates.slice(0, TOP_K).map((k) => {
    const { s, i } = k;
    const reg = heads.bbox[k.level];
    const cx = f32(f32(reg[i * 4] * s) + f32(k.c * s));
    const cy = f32(f32(reg[i * 4 + 1] * s) + f32(k.r * s));
    const w = f32(f32(Math.exp(reg[i * 4 + 2])) * s);
    const h = f32(f32(Math.exp(reg[i * 4 + 3])) * s);
    return [f32(cx - f32(w / 2)), f32(cy - f32(h / 2)), f32(cx + f32(w / 2)), f32(cy + f32(h / 2))];
  });
  const kept = [];
  for (let j = 0; j < boxes.length; j += 1) {
    if (kept.every((k) => iou(boxes[j], boxes[k]) <= NMS_THRESHOLD)) kept.push(j);
  }
  const rows = [];
  for (const j of kept.slice(0, KEEP_TOP_K)) {
    const { score, s, level, i } = candidates[j];
    const percent = Math.trunc(f32(score * 100));
    if (percent < MIN_SCORE_PERCENT) continue;
    const px = f32(candidates[j].c * s);
    const py = f32(candidates[j].r * s);
    const kps = heads.kps[level];
    const marks = [];
    for (let k = 0; k < 5; k += 1) marks.push(f32(f32(kps[i * 10 + 2 * k] * s) + px), f32(f32(kps[i * 10 + 2 * k + 1] * s) + py));
    const [x1, y1, x2, y2] = boxes[j];
    rows.push([percent / 100, ...[x1, y1, f32(x2 - x1), f32(y2 - y1), ...marks].map(Math.trunc)]);
  }
  return rows;
}

/** Faces in RGBA pixels of a width x height frame, in its pixels, like the agent's YuNet detector
 * with work_width `workWidth`: [{box: [x, y, w, h], score, landmarks: five [x, y]}] (boxes with no
 * width or height dropped, as the agent's _faces_from_rows). */
export function detectYuNet(net, rgba, width, height, workWidth = 320) {
  const factor = width > workWidth ? workWidth / width : 1;
  const outWidth = factor === 1 ? width : workWidth;
  const outHeight = factor === 1 ? height : Math.round(height * factor);
  let started = performance.now();
  const input = areaDownscale(rgba, width, height, outWidth, outHeight);
  started = timed("detector: downscale", started);
  const out = forward(net, input);
  started = timed("detector: network", started); // tfjs-wasm runs each op as it is dispatched
  const shapes = STRIDES.map((s) => [input.padHeight / s, input.padWidth / s]);
  const heads = {};
  for (const head of Object.keys(HEADS)) {
    heads[head] = out[head].map((t) => t.dataSync());
    out[head].forEach((t) => t.dispose());
  }
  started = timed("detector: read outputs", started);
  const rows = decode(heads, shapes);
  timed("detector: decode", started);
  return rows
    .filter((row) => row[3] > 0 && row[4] > 0)
    .map((row) => ({
      box: row.slice(1, 5).map((v) => v / factor),
      score: row[0],
      landmarks: [0, 1, 2, 3, 4].map((k) => [row[5 + 2 * k] / factor, row[6 + 2 * k] / factor]),
    }));
}
