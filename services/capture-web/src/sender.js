// Delivers the outbox to POST /v1/observations, oldest first, up to 64 per request, with the same
// observation ids on every resend (the server ignores ids it has seen: nothing is counted twice).
// Mirrors the Python agent's sender (services/capture/classroom_capture/sender.py):
//   2xx: delete; 401/403: stop (credential revoked); 413/422 on one observation: drop it (counted);
//   413/422 on several: send them one by one; 429/503/network error: keep and retry later.

export const BATCH = 64;

export class Sender {
  constructor({ outbox, owner, credential, onStatus, fetchFn = fetch.bind(window) }) {
    Object.assign(this, { outbox, owner, credential, onStatus, fetchFn });
    this.sent = 0;
    this.rejected = 0;
    this.stopped = false;
  }

  async post(observations) {
    return this.fetchFn("v1/observations", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.credential}` },
      body: JSON.stringify({ observations }),
      credentials: "omit",
      cache: "no-store",
    });
  }

  /** One delivery round; returns seconds to wait before the next. */
  async round() {
    const batch = await this.outbox.oldest(this.owner, BATCH);
    if (!batch.length) return 1;
    let response;
    try {
      response = await this.post(batch.map((e) => e.observation));
    } catch {
      this.onStatus("The class server cannot be reached; your observations wait here and are sent when it is back.");
      return 3;
    }
    if (response.ok) {
      await this.outbox.remove(batch.map((e) => e.seq));
      this.sent += batch.length;
      this.onStatus("");
      return batch.length === BATCH ? 0 : 1;
    }
    if (response.status === 401 || response.status === 403) {
      this.stopped = true;
      this.onStatus("This join link is no longer valid. Ask your teacher for a new one.", true);
      return null;
    }
    if (response.status === 413 || response.status === 422) {
      if (batch.length === 1) {
        await this.outbox.remove([batch[0].seq]);
        this.rejected += 1;
        return 0;
      }
      return this.oneByOne(batch);
    }
    const retry = Number(response.headers.get("Retry-After")) || 3;
    this.onStatus("The class server is busy; your observations wait here and are sent shortly.");
    return Math.min(Math.max(retry, 1), 60);
  }

  async oneByOne(batch) {
    for (const entry of batch) {
      let response;
      try {
        response = await this.post([entry.observation]);
      } catch {
        return 3;
      }
      if (response.ok) this.sent += 1;
      else if (response.status === 413 || response.status === 422) this.rejected += 1;
      else return 3;
      await this.outbox.remove([entry.seq]);
    }
    return 0;
  }
}
