// The capture page at /join: consent, camera preview, "sharing / paused", in-browser detection,
// 48x48 crops, IndexedDB outbox, delivery. Only observations leave the page: never a frame.
import { normalise, takeFromFragment } from "./credential.js";
import { encodeCrop } from "./crop.js";
import { NEUTRAL_NOSE_HEIGHT, analyseFrame, loadDetector } from "./detect.js";
import { Outbox } from "./outbox.js";
import { headPose } from "./pose.js";
import { Sender } from "./sender.js";
import { cancel, later, sleep } from "./ticker.js";
import { timed } from "./timings.js";

// Relative: the page works under a path prefix too (PUBLIC_URL/prefix/join).
const ASSETS = "join/assets";
const $ = (id) => document.getElementById(id);
const show = (id, visible = true) => {
  $(id).hidden = !visible;
};

const state = { credential: null, me: null, outbox: null, sender: null, stream: null, sharing: false, timer: null, loop: 0 };
const canvas = document.createElement("canvas");

function fatal(message) {
  $("fatal").textContent = message;
  show("fatal");
}

/** Writes `text` only when it changed: each write re-lays out and repaints the page. */
function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

function setStatus(message, isError = false) {
  setText("status", message);
  $("status").classList.toggle("error", isError);
}

async function whoAmI(credential) {
  const response = await fetch("v1/me", {
    headers: { Authorization: `Bearer ${credential}` },
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 401 || response.status === 403) return null;
  if (!response.ok) throw new Error(`the class server answered ${response.status}`);
  return response.json();
}

async function signIn(credential) {
  let me;
  try {
    me = await whoAmI(credential);
  } catch (error) {
    fatal(`Could not reach the class server (${error.message}). Reload the page to try again.`);
    return;
  }
  if (!me) {
    sessionStorage.removeItem("credential");
    $("code-error").textContent = "This join link or code is not valid (any more). Ask your teacher for a new one.";
    show("code-error");
    show("code-entry");
    return;
  }
  state.credential = credential;
  state.me = me;
  sessionStorage.setItem("credential", credential); // this tab only: a reload keeps working
  $("class-name").textContent = me.class_name || me.class_id;
  $("student-name").textContent = me.display_name || me.student_id;
  const rate = Number(me.sample_rate_hz) || 2;
  const every = rate >= 1 ? `${rate} time${rate === 1 ? "" : "s"} a second` : `once every ${Math.round(1 / rate)} seconds`;
  $("rate-line").firstChild.textContent = `About ${every} it looks for your face. It then sends your class's server `;
  show("code-entry", false);
  show("consent");
}

/** 640x480 as the Python agent (the crop is cut from the full frame); at most 10 frames a second: the
 * page samples 2 a second at most, and each camera frame costs capture, colour conversion and preview
 * drawing (a 30 frames/s camera, bench/join_cpu.py --camera-fps 30: 13.2-13.4% of a core at 15/s,
 * 11.4-12.0% at 10/s, 10.3-10.8% at 5/s). 10 a second still looks live. */
const CAMERA = { width: 640, height: 480, frameRate: { ideal: 10, max: 10 } };

async function startCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: CAMERA, audio: false });
  } catch (error) {
    if (error.name !== "OverconstrainedError") throw error;
    // A camera (or browser) that cannot cap its rate: the size alone, as before.
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  }
  $("preview").srcObject = state.stream;
  await $("preview").play();
}

function stopCamera() {
  for (const track of state.stream ? state.stream.getTracks() : []) track.stop();
  state.stream = null;
  $("preview").srcObject = null;
}

function render() {
  const banner = $("state");
  banner.className = `state ${state.sharing ? "sharing" : "paused"}`;
  banner.textContent = state.sharing ? "SHARING with your class" : "PAUSED: nothing is being sent";
  document.body.dataset.state = state.sharing ? "sharing" : "paused";
  $("toggle").textContent = state.sharing ? "Pause" : "Resume sharing";
}

/** The camera's current frame, held until close(): a VideoFrame (no copy, no colour conversion) where
 * the browser has them, else a full-size canvas copy. Detection and crop read the same frame. */
function grabFrame(video) {
  if (typeof VideoFrame === "function") {
    const frame = new VideoFrame(video);
    return { frame, close: () => frame.close() };
  }
  // Resizing a canvas reallocates it, even to its own size: only when the camera's size changes.
  if (canvas.width !== video.videoWidth) canvas.width = video.videoWidth;
  if (canvas.height !== video.videoHeight) canvas.height = video.videoHeight;
  canvas.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0);
  return { frame: canvas, close: () => {} };
}

/** One sample: detect, crop and queue an observation (never the frame). */
async function sample() {
  const video = $("preview");
  if (!video.videoWidth) return;
  const capturedAt = Date.now() / 1000;
  const started = performance.now();
  const grabbed = grabFrame(video);
  timed("grab", started);
  let analysed;
  try {
    analysed = await analyseFrame(grabbed.frame);
  } finally {
    grabbed.close();
  }
  const { faces, student, crop } = analysed;
  document.body.dataset.detectMs = (performance.now() - started).toFixed(1); // read by bench/join_cpu.py
  const queued = performance.now();
  const observation = { observation_id: crypto.randomUUID(), captured_at: capturedAt, face_count: faces.length };
  if (student) {
    observation.crop = encodeCrop(crop);
    [observation.head_yaw, observation.head_pitch] = headPose(student.landmarks, NEUTRAL_NOSE_HEIGHT);
  }
  if (!state.sharing) return; // paused while detecting: this sample is discarded
  await state.outbox.put(ownerKey(), observation);
  timed("encode+outbox", queued);
  timed("sample", started);
  setText("face", faces.length ? "yes" : "no");
}

function ownerKey() {
  return `${state.me.class_id}/${state.me.student_id}`;
}

/** Samples at the class's rate; the next one is scheduled after the previous finished (no overlap).
 * The worker's timer (ticker.js) keeps the rate in a hidden tab: students switch to the lesson.
 * Each loop has a number (state.loop, bumped here and by pause()): a sample still in flight across
 * Pause and Resume ends its old loop instead of sampling next to the new one (twice the rate). */
function scheduleSampling() {
  const period = 1000 / (Number(state.me.sample_rate_hz) || 2);
  state.loop += 1;
  const loop = state.loop;
  const current = () => state.sharing && loop === state.loop;
  const tick = async () => {
    if (!current()) return;
    const started = performance.now();
    try {
      await sample();
    } catch (error) {
      setStatus(`Capture problem: ${error.message}`, true);
    }
    if (current()) state.timer = later(tick, Math.max(0, period - (performance.now() - started)));
  };
  tick();
}

async function deliver() {
  for (let rounds = 1; ; rounds += 1) {
    let wait = 1;
    const started = performance.now();
    if (state.sharing && !state.sender.stopped) wait = await state.sender.round();
    timed("send", started);
    if (wait === null) {
      await pause(); // the credential was revoked: nothing more can be sent with it
      $("toggle").disabled = true;
      sessionStorage.removeItem("credential");
      return;
    }
    setText("sent", String(state.sender.sent));
    setText("waiting", String(await state.outbox.count(ownerKey())));
    document.body.dataset.rounds = String(rounds); // a heartbeat: tests wait on it, never on the clock
    await sleep(wait * 1000); // a hidden tab's setTimeout would wait longer: ticker.js
  }
}

async function resume() {
  await startCamera();
  state.sharing = true;
  render();
  scheduleSampling();
}

async function pause() {
  state.sharing = false;
  state.loop += 1; // the loop in flight, if any, ends: scheduleSampling
  cancel(state.timer);
  stopCamera();
  render();
}

async function agree() {
  show("consent", false);
  show("live");
  render();
  try {
    await loadDetector(ASSETS);
    state.outbox = await Outbox.open();
    state.sender = new Sender({ outbox: state.outbox, owner: ownerKey(), credential: state.credential, onStatus: setStatus });
    await resume();
  } catch (error) {
    fatal(`Could not start: ${error.message}`);
    return;
  }
  deliver();
}

function main() {
  $("agree").addEventListener("click", agree);
  $("toggle").addEventListener("click", () => (state.sharing ? pause() : resume()));
  $("code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const credential = normalise($("code").value);
    if (!credential) {
      $("code-error").textContent = "That is not a join code: 16 letters and digits, like ABCD-EFGH-JKMN-PQRS.";
      show("code-error");
      return;
    }
    show("code-error", false);
    signIn(credential);
  });
  const credential = takeFromFragment(window.location, window.history) || sessionStorage.getItem("credential");
  if (credential) signIn(credential);
  else show("code-entry");
}

main();
