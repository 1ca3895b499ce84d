// The page's outbox: every observation is written to IndexedDB the moment it is captured and
// deleted only once the server acknowledged it, so a closed tab, a lost network or a server
// restart loses nothing; a resend carries the same observation ids, which the server counts once.
// Bounded: at most `maxItems` (oldest dropped when full, and counted), like the Python agent's.
// Each entry records whose it is (class/student from GET /v1/me): on a shared laptop one student's
// observations are never sent with another student's credential.

const DB_NAME = "classroom-capture";
const STORE = "outbox";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export class Outbox {
  static async open(maxItems = 10000) {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      const store = open.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
      store.createIndex("owner", "owner");
    };
    return new Outbox(await request(open), maxItems);
  }

  constructor(db, maxItems) {
    this.db = db;
    this.maxItems = maxItems;
    this.dropped = 0;
  }

  /** Store one observation; drops the oldest entries past the bound (returns how many). */
  async put(owner, observation) {
    const tx = this.db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    store.add({ owner, observation });
    const count = await request(store.count());
    let excess = count - this.maxItems;
    const dropped = Math.max(0, excess);
    if (excess > 0) {
      const cursorReq = store.openCursor();
      cursorReq.onsuccess = () => {
        const cursor = cursorReq.result;
        if (cursor && excess > 0) {
          cursor.delete();
          excess -= 1;
          cursor.continue();
        }
      };
    }
    await done(tx);
    this.dropped += dropped;
    return dropped;
  }

  /** Up to `limit` oldest entries of `owner`: [{seq, observation}]. */
  async oldest(owner, limit = 64) {
    const tx = this.db.transaction(STORE, "readonly");
    const index = tx.objectStore(STORE).index("owner");
    const rows = await request(index.getAll(IDBKeyRange.only(owner), limit));
    return rows.sort((a, b) => a.seq - b.seq);
  }

  async remove(seqs) {
    const tx = this.db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    for (const seq of seqs) store.delete(seq);
    await done(tx);
  }

  async count(owner) {
    const tx = this.db.transaction(STORE, "readonly");
    const store = tx.objectStore(STORE);
    return request(owner === undefined ? store.count() : store.index("owner").count(IDBKeyRange.only(owner)));
  }
}
