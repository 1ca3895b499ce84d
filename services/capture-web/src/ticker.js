// Timers that keep time in a hidden tab. Chromium wakes a hidden page's timers at most once a second
// (the page then samples 1 a second, not 2: measured, tests/join/test_hidden_tab.py), and timer
// chains once a minute after 5 minutes hidden; a dedicated worker's timers are not throttled so, and
// its messages wake the page at once. Students switch to the lesson's tab while sharing, so the page
// waits on a worker's timer; setTimeout where a worker cannot start (the page's CSP allows blob:
// workers: services/inference/classroom_inference/api/join.py).

const SOURCE = "onmessage = (event) => setTimeout(() => postMessage(event.data.id), event.data.ms);";

const pending = new Map(); // id -> { callback, due, timeout }
let nextId = 0;
let worker; // undefined: not tried yet; null: none (setTimeout instead)

function fire(id) {
  const entry = pending.get(id);
  if (!entry) return; // cancelled, or fired already
  pending.delete(id);
  clearTimeout(entry.timeout);
  entry.callback();
}

function withSetTimeout(id) {
  const entry = pending.get(id);
  if (entry) entry.timeout = setTimeout(() => fire(id), Math.max(0, entry.due - performance.now()));
}

/** The worker that keeps time, started on first use; null where it cannot start (then setTimeout). */
function ticker() {
  if (worker !== undefined) return worker;
  try {
    worker = new Worker(URL.createObjectURL(new Blob([SOURCE], { type: "text/javascript" })));
    worker.onmessage = (event) => fire(event.data);
    worker.onerror = () => {
      // Failed to load (a stricter CSP, say): what waits on it falls back to setTimeout.
      worker = null;
      for (const id of pending.keys()) withSetTimeout(id);
    };
  } catch {
    worker = null;
  }
  return worker;
}

/** Calls `callback` after `ms` milliseconds, hidden tab or not; returns an id for cancel(). */
export function later(callback, ms) {
  nextId += 1;
  const id = nextId;
  pending.set(id, { callback, due: performance.now() + ms, timeout: null });
  const timer = ticker();
  if (timer) timer.postMessage({ id, ms });
  else withSetTimeout(id);
  return id;
}

/** The callback of later()'s `id` will not be called. */
export function cancel(id) {
  const entry = pending.get(id);
  if (entry) clearTimeout(entry.timeout);
  pending.delete(id);
}

/** Resolves after `ms` milliseconds, hidden tab or not. */
export const sleep = (ms) => new Promise((resolve) => later(resolve, ms));
