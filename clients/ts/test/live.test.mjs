// The client against a live Encore (API, broker, flow, Redis): events it posts show in the next
// recommendations read. Runs when ENCORE_API_URL is set: tests/integration/test_ts_client.py starts
// the stack and runs `npm test` with it (ENCORE_API_KEY: a key with write, read and admin).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { EncoreClient } from "../dist/src/index.js";

const API = process.env.ENCORE_API_URL;
const KEY = process.env.ENCORE_API_KEY;
const headers = { "content-type": "application/json", ...(KEY ? { authorization: `Bearer ${KEY}` } : {}) };
const skip = API ? false : "ENCORE_API_URL is not set (tests/integration/test_ts_client.py sets it)";

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.get(key) ?? null; }
  setItem(key, value) { this.items.set(key, value); }
  removeItem(key) { this.items.delete(key); }
}

function track(id, genre, energy) {
  return { track_id: id, title: `Song ${id}`, artist: `Artist ${id}`, genres: [genre], popularity: 50,
    danceability: 0.5, energy, valence: 0.5, acousticness: 1 - energy, instrumentalness: 0, liveness: 0.1,
    speechiness: 0.05, tempo: 80 + 80 * energy, loudness: -20 + 15 * energy };
}

async function waitFor(probe, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("against a live stack", { skip }, () => {
  const run = Date.now().toString(36);
  const tracks = [...Array.from({ length: 6 }, (_, i) => track(`ts-${run}-rock-${i}`, "rock", 0.85 + i / 100)),
    ...Array.from({ length: 6 }, (_, i) => track(`ts-${run}-jazz-${i}`, "jazz", 0.1 + i / 100))];

  test("the catalog loads", async () => {
    const response = await fetch(`${API}/v1/tracks`, { method: "POST", headers, body: JSON.stringify(tracks) });
    assert.equal(response.status, 202, await response.text());
    await waitFor(async () => {
      const ready = await (await fetch(`${API}/readyz`)).json();
      return ready.checks.catalog.ok && ready.checks.catalog.tracks >= tracks.length;
    }, "the catalog in the API");
  });

  test("events posted by the client show in the next recommendations read", async () => {
    const user = `ts-listener-${run}`;
    const client = new EncoreClient({ baseUrl: API, apiKey: KEY, storage: new MemoryStorage() });
    const before = await client.recommendations(user, { k: 4 });
    assert.equal(before.profile_version, 0);
    assert.equal(before.cold_start, true);

    client.like(user, tracks[0].track_id);
    client.complete(user, tracks[1].track_id, { position_ms: 200_000, duration_ms: 200_000 });
    assert.deepEqual(await client.flush(), { sent: 2, rejected: 0, queued: 0 });

    const after = await waitFor(async () => {
      const recs = await client.recommendations(user, { k: 3 });
      return recs.profile_version >= 2 ? recs : null;
    }, "the flow to apply the two events");
    assert.equal(after.profile_version, 2);
    assert.equal(after.cold_start, false);
    assert.ok(after.as_of);
    const ids = after.items.map((item) => item.track_id);
    assert.ok(!ids.includes(tracks[0].track_id) && !ids.includes(tracks[1].track_id), "just-played tracks are left out");
    assert.deepEqual(after.items[0].genres, ["rock"]);
  });

  test("a retried batch (the same event ids) is applied once", async () => {
    const user = `ts-retry-${run}`;
    const client = new EncoreClient({ baseUrl: API, apiKey: KEY, storage: null });
    client.like(user, tracks[2].track_id, { event_id: `retry-${run}` });
    await client.flush();
    await waitFor(async () => (await client.recommendations(user)).profile_version >= 1, "the first copy");
    client.like(user, tracks[2].track_id, { event_id: `retry-${run}` }); // the same id again, as a retry sends it
    client.play(user, tracks[3].track_id);
    await client.flush();
    const recs = await waitFor(async () => {
      const r = await client.recommendations(user);
      return r.as_of && r.profile_version >= 2 ? r : null;
    }, "the later event");
    assert.equal(recs.profile_version, 2, "the repeated event id was applied once");
  });

  test("events queued offline are sent after a reload", async () => {
    const user = `ts-offline-${run}`;
    const storage = new MemoryStorage();
    const offline = new EncoreClient({ baseUrl: API, apiKey: KEY, storage, maxRetries: 1, sleep: async () => {},
      fetch: async () => { throw new TypeError("fetch failed: offline"); } });
    offline.like(user, tracks[4].track_id);
    assert.deepEqual(await offline.flush(), { sent: 0, rejected: 0, queued: 1 });

    const reloaded = new EncoreClient({ baseUrl: API, apiKey: KEY, storage });
    assert.equal(reloaded.pending().length, 1);
    assert.deepEqual(await reloaded.flush(), { sent: 1, rejected: 0, queued: 0 });
    const recs = await waitFor(async () => {
      const r = await reloaded.recommendations(user);
      return r.profile_version >= 1 ? r : null;
    }, "the offline event");
    assert.equal(recs.profile_version, 1);
  });
});
