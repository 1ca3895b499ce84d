// The 48x48 grayscale crop, computed exactly as the Python agent's crop_face()
// (services/capture/classroom_capture/detector.py): a square box from the detector's box
// (side = scale * max(w, h), centre shifted by (dx, dy) * max(w, h)), a Gaussian blur first when
// shrinking a lot (sigma = 0.5 / scale * 0.6, as OpenCV sizes the kernel), then bilinear sampling
// with edge replication where the box leaves the frame. Only this crop leaves the laptop.

export const CROP_SIZE = 48;

/** Grayscale of RGBA pixels with OpenCV's BGR2GRAY weights, rounded like cv2 (uint8). */
export function toGray(rgba, width, height) {
  const gray = new Uint8ClampedArray(width * height);
  for (let i = 0, j = 0; i < gray.length; i += 1, j += 4) {
    gray[i] = Math.round(0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2]);
  }
  return gray;
}

/** Grayscale (as toGray) of the window [x0, x1) x [y0, y1) of the frame's RGBA pixels `rgba`, `width`
 * wide, written into `gray` (a whole frame's buffer, reused): the rest of `gray` is left as it was. */
export function toGrayWindow(rgba, gray, width, [x0, y0, x1, y1]) {
  const w = x1 - x0;
  for (let y = y0; y < y1; y += 1) {
    for (let i = y * width + x0, end = i + w, j = 4 * i; i < end; i += 1, j += 4) {
      gray[i] = Math.round(0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2]);
    }
  }
}

/** Blur sigma, kernel half-width and window padding of cropFace() for a square of this side. */
function blurPlan(side) {
  const scale = CROP_SIZE / side;
  if (scale >= 0.5) return null;
  const sigma = (0.5 / scale) * 0.6;
  return { sigma, half: (gaussianKernel(sigma).length - 1) / 2, pad: Math.round(sigma * 3) + 1 };
}

/** The square's window of the frame for bilinear sampling (one pixel more), clamped to the frame. */
function sampleWindow(cx, cy, side, width, height) {
  return [
    Math.max(0, Math.floor(cx - side / 2) - 2),
    Math.max(0, Math.floor(cy - side / 2) - 2),
    Math.min(width, Math.ceil(cx + side / 2) + 3),
    Math.min(height, Math.ceil(cy + side / 2) + 3),
  ];
}

/** [x0, y0, x1, y1]: every frame pixel cropFace() may read for this box (blur margins included), so a
 * caller can read back and convert only these pixels of a frame (the page's largest per-sample cost
 * otherwise: a whole 640x480 readback and grayscale for a 48x48 crop). */
export function cropWindow(box, geometry, width, height) {
  const { cx, cy, side } = squareBox(box, geometry);
  let [x0, y0, x1, y1] = sampleWindow(cx, cy, side, width, height);
  if (x1 <= x0 || y1 <= y0) {
    const nx = Math.min(width - 1, Math.max(0, Math.round(cx)));
    const ny = Math.min(height - 1, Math.max(0, Math.round(cy)));
    return [nx, ny, nx + 1, ny + 1];
  }
  const plan = blurPlan(side);
  const margin = plan ? plan.pad + plan.half : 0;
  [x0, y0] = [Math.max(0, x0 - margin), Math.max(0, y0 - margin)];
  [x1, y1] = [Math.min(width, x1 + margin), Math.min(height, y1 + margin)];
  return [x0, y0, x1, y1];
}

export function squareBox(box, geometry) {
  const [x, y, w, h] = box;
  const size = Math.max(w, h);
  return {
    cx: x + w / 2 + geometry.dx * size,
    cy: y + h / 2 + geometry.dy * size,
    side: Math.max(geometry.scale * size, 2),
  };
}

function gaussianKernel(sigma) {
  // OpenCV: ksize = round(sigma * 3 * 2 + 1) | 1 for 8-bit images.
  const size = Math.round(sigma * 6 + 1) | 1;
  const half = (size - 1) / 2;
  const kernel = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i += 1) {
    kernel[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
    sum += kernel[i];
  }
  return kernel.map((v) => v / sum);
}

/** Blur the window [x0, x1) x [y0, y1) of `gray`; returns a Float32Array window. The frame's edges are
 * replicated (cv2.GaussianBlur reflects them): the two differ only within a few pixels of the frame's border. */
/** Where the bilinear sampling reads a window `size` pixels long: flags of the pixels (clamped as bilinear()). */
function readAt(coords, offset, size) {
  const need = new Uint8Array(size);
  for (const c of coords) {
    const f = Math.floor(c - offset);
    need[Math.min(size - 1, Math.max(0, f))] = 1;
    need[Math.min(size - 1, Math.max(0, f + 1))] = 1;
  }
  return need;
}

/** Blur the window [x0, x1) x [y0, y1) of `gray`; returns a Float32Array window, computed only at the
 * columns `needX` and rows `needY` (flags) the sampling reads: a 48x48 crop reads about a fifth of a
 * face's window, and each value is computed exactly as for the whole window. The frame's edges are
 * replicated (cv2.GaussianBlur reflects them): the two differ only within a few pixels of the frame's border. */
function blurWindow(gray, width, height, [x0, y0, x1, y1], sigma, needX, needY) {
  const kernel = gaussianKernel(sigma);
  const taps = kernel.length;
  const half = (taps - 1) / 2;
  const w = x1 - x0;
  const h = y1 - y0;
  // The frame's columns each output pixel's taps read, edges replicated, looked up once.
  const cols = new Int32Array(w + 2 * half);
  for (let i = 0; i < cols.length; i += 1) cols[i] = Math.min(width - 1, Math.max(0, x0 + i - half));
  const xs = [];
  for (let xx = 0; xx < w; xx += 1) if (needX[xx]) xs.push(xx);
  const rowNeeded = new Uint8Array(h + 2 * half);
  for (let yy = 0; yy < h; yy += 1) if (needY[yy]) rowNeeded.fill(1, yy, yy + taps);
  const rows = new Float32Array(w * (h + 2 * half));
  for (let yy = -half; yy < h + half; yy += 1) {
    if (!rowNeeded[yy + half]) continue;
    const row = Math.min(height - 1, Math.max(0, y0 + yy)) * width;
    const at = (yy + half) * w;
    for (const xx of xs) {
      let acc = 0;
      for (let k = 0; k < taps; k += 1) acc += kernel[k] * gray[row + cols[xx + k]];
      rows[at + xx] = acc;
    }
  }
  const out = new Float32Array(w * h);
  for (let yy = 0; yy < h; yy += 1) {
    if (!needY[yy]) continue;
    for (const xx of xs) {
      let acc = 0;
      for (let k = 0; k < taps; k += 1) acc += kernel[k] * rows[(yy + k) * w + xx];
      out[yy * w + xx] = Math.round(acc); // cv2 rounds the blurred uint8 image
    }
  }
  return out;
}

/** 48x48 Uint8Array crop of `box` from a grayscale frame. */
export function cropFace(gray, width, height, box, geometry) {
  const { cx, cy, side } = squareBox(box, geometry);
  const scale = CROP_SIZE / side;
  // The window of the frame the crop reads (plus one pixel for bilinear), clamped to the frame.
  const [x0, y0, x1, y1] = sampleWindow(cx, cy, side, width, height);
  let src;
  let sw;
  let sh;
  let ox;
  let oy;
  if (x1 <= x0 || y1 <= y0) {
    // The square lies wholly outside the frame: the nearest frame pixel, replicated (as cv2 would).
    const nx = Math.min(width - 1, Math.max(0, Math.round(cx)));
    const ny = Math.min(height - 1, Math.max(0, Math.round(cy)));
    return new Uint8Array(CROP_SIZE * CROP_SIZE).fill(gray[ny * width + nx]);
  }
  // cv2.warpAffine maps destination pixel centres: src = (dst - t) / scale.
  const inv = 1 / scale;
  const sxs = new Float64Array(CROP_SIZE);
  const sys = new Float64Array(CROP_SIZE);
  for (let i = 0; i < CROP_SIZE; i += 1) {
    sxs[i] = (i - (CROP_SIZE / 2 - scale * cx)) * inv;
    sys[i] = (i - (CROP_SIZE / 2 - scale * cy)) * inv;
  }
  const plan = blurPlan(side);
  if (plan) {
    const { sigma, pad } = plan;
    ox = Math.max(0, x0 - pad);
    oy = Math.max(0, y0 - pad);
    const ex = Math.min(width, x1 + pad);
    const ey = Math.min(height, y1 + pad);
    sw = ex - ox;
    sh = ey - oy;
    const needX = readAt(sxs, ox, sw);
    const needY = readAt(sys, oy, sh);
    src = blurWindow(gray, width, height, [ox, oy, ex, ey], sigma, needX, needY);
  } else {
    ox = 0;
    oy = 0;
    src = gray;
    sw = width;
    sh = height;
  }
  const out = new Uint8Array(CROP_SIZE * CROP_SIZE);
  for (let v = 0; v < CROP_SIZE; v += 1) {
    for (let u = 0; u < CROP_SIZE; u += 1) out[v * CROP_SIZE + u] = bilinear(src, sw, sh, sxs[u] - ox, sys[v] - oy);
  }
  return out;
}

function bilinear(src, sw, sh, x, y) {
  // Edge replication at the FRAME's border (the window is clamped to the frame, so clamping to the
  // window equals clamping to the frame wherever the window touches the frame's edge).
  const fx = Math.floor(x);
  const fy = Math.floor(y);
  const ax = x - fx;
  const ay = y - fy;
  const cx0 = Math.min(sw - 1, Math.max(0, fx));
  const cx1 = Math.min(sw - 1, Math.max(0, fx + 1));
  const cy0 = Math.min(sh - 1, Math.max(0, fy));
  const cy1 = Math.min(sh - 1, Math.max(0, fy + 1));
  const top = src[cy0 * sw + cx0] * (1 - ax) + src[cy0 * sw + cx1] * ax;
  const bottom = src[cy1 * sw + cx0] * (1 - ax) + src[cy1 * sw + cx1] * ax;
  return Math.min(255, Math.max(0, Math.round(top * (1 - ay) + bottom * ay)));
}

/** Base64 of the crop's raw bytes (the contract's `crop`). */
export function encodeCrop(crop) {
  let binary = "";
  for (let i = 0; i < crop.length; i += 1) binary += String.fromCharCode(crop[i]);
  return btoa(binary);
}
