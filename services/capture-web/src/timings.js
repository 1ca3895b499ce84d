// Where a sample's time goes, for bench/join_cpu.py only: milliseconds summed per step, with counts.
// The bench reads window.joinTimings (no DOM write, so no layout or repaint); the cost is a
// performance.now() per step.
export const timings = {};
globalThis.joinTimings = timings;

/** Adds the time since `started` (a performance.now()) to `step`; returns now (the next step's start). */
export function timed(step, started) {
  const now = performance.now();
  const entry = timings[step] || (timings[step] = { ms: 0, count: 0 });
  entry.ms += now - started;
  entry.count += 1;
  return now;
}

/** `object[method]` (async), its time added to `step` on each call. */
export function timeMethod(object, method, step) {
  const original = object[method].bind(object);
  object[method] = async (...args) => {
    const started = performance.now();
    try {
      return await original(...args);
    } finally {
      timed(step, started);
    }
  };
}
