// Classroom dashboard: live tiles over Server-Sent Events, relative times, confirmations.
// Served by the app itself (no CDN); the CSP forbids inline scripts, so everything lives here.
"use strict";

(function () {
  const RANK = { absent: 0, distracted: 1, offline: 3 };

  function rank(tile) {
    const r = RANK[tile.dataset.state];
    return r === undefined ? 2 : r;
  }

  function sortTiles(container) {
    const tiles = Array.from(container.children);
    const sorted = tiles.slice().sort(function (a, b) {
      return rank(a) - rank(b) || (a.dataset.student < b.dataset.student ? -1 : a.dataset.student > b.dataset.student ? 1 : 0);
    });
    const changed = sorted.some(function (t, i) { return t !== tiles[i]; });
    if (changed) sorted.forEach(function (t) { container.appendChild(t); });
  }

  function updateSummary(container) {
    const tiles = Array.from(container.children);
    const count = function (state) { return tiles.filter(function (t) { return t.dataset.state === state; }).length; };
    const scores = tiles.map(function (t) { return t.dataset.score; }).filter(function (s) { return s !== ""; }).map(Number);
    const set = function (key, value) {
      const el = document.querySelector('[data-count="' + key + '"]');
      if (el) el.textContent = value;
    };
    set("students", tiles.length);
    set("needs", tiles.filter(function (t) { return t.dataset.needs === "1"; }).length);
    ["absent", "distracted", "attentive"].forEach(function (s) { set(s, count(s)); });
    set("mean", scores.length ? Math.round(scores.reduce(function (a, b) { return a + b; }, 0) / scores.length) : "–");
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = tiles.length > 0;
  }

  function formatAgo(seconds) {
    if (seconds < 60) return Math.max(0, Math.round(seconds)) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    return Math.floor(seconds / 3600) + " h ago";
  }

  function liveClass(page) {
    const container = document.getElementById("tiles");
    const status = document.getElementById("live-status");
    const offset = Number(page.dataset.serverNow) - Date.now() / 1000; // server clock - browser clock
    const offlineAfter = Number(page.dataset.offlineAfter);
    const serverNow = function () { return Date.now() / 1000 + offset; };
    const setStatus = function (state, text) { status.dataset.state = state; status.textContent = text; };

    const url = page.dataset.eventsUrl + "?since=" + encodeURIComponent(page.dataset.since);
    const source = new EventSource(url);
    source.addEventListener("open", function () { setStatus("live", "live"); });
    source.addEventListener("error", function () {
      // CLOSED: the server refused (e.g. logged out); otherwise EventSource retries by itself.
      if (source.readyState === EventSource.CLOSED) setStatus("closed", "disconnected: reload the page");
      else setStatus("reconnecting", "reconnecting…");
    });
    source.addEventListener("tile", function (event) {
      const data = JSON.parse(event.data);
      const holder = document.createElement("div");
      holder.innerHTML = data.html; // rendered and escaped by the server's template
      const fresh = holder.firstElementChild;
      const old = document.getElementById("tile-" + data.student.student_id);
      if (old) old.replaceWith(fresh); else container.appendChild(fresh);
      fresh.classList.add("updated");
      setTimeout(function () { fresh.classList.remove("updated"); }, 1200);
      sortTiles(container);
      updateSummary(container);
    });
    source.addEventListener("removed", function (event) {
      const old = document.getElementById("tile-" + JSON.parse(event.data).student_id);
      if (old) old.remove();
      updateSummary(container);
    });

    // Relative times tick; a student whose laptop went quiet turns "no data" without a reload.
    setInterval(function () {
      const now = serverNow();
      document.querySelectorAll("#tiles time.ago").forEach(function (el) {
        el.textContent = formatAgo(now - Number(el.dataset.t));
      });
      let changed = false;
      Array.from(container.children).forEach(function (tile) {
        if (tile.dataset.state !== "offline" && now - Number(tile.dataset.processedAt) > offlineAfter) {
          tile.dataset.state = "offline";
          tile.dataset.needs = "0";
          tile.className = "tile state-offline";
          const badge = tile.querySelector(".badge");
          if (badge) { badge.className = "badge badge-offline"; badge.textContent = "no data"; }
          changed = true;
        }
      });
      if (changed) { sortTiles(container); updateSummary(container); }
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const page = document.getElementById("class-page");
    if (page && window.EventSource) liveClass(page);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
