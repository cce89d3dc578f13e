// Unit tests of the web player client against a scripted fetch and an in-memory storage.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { backoffCeiling, EncoreClient, EventsRejected, parseRetryAfter } from "../dist/src/index.js";

/** localStorage's interface over a Map: what survives a "page reload" is what is in here. */
class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

/** A fetch that answers with the scripted steps (a status, a Response, or an Error), then 202. */
function scriptedFetch(script = []) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    const body = init.body ? JSON.parse(init.body) : undefined;
    requests.push({ url, method: init.method ?? "GET", headers: init.headers ?? {}, body });
    const step = script.length > 0 ? script.shift() : 202;
    if (step instanceof Error) throw step;
    if (step instanceof Response) return step;
    const payload = step === 202 ? { accepted: body.length, topic: "encore.events", ids: body.map((e) => e.event_id) }
      : { error: { code: "x", message: "scripted" } };
    return new Response(JSON.stringify(payload), { status: step, headers: { "content-type": "application/json" } });
  };
  return { fetch, requests };
}

function makeClient(script, options = {}) {
  const { fetch, requests } = scriptedFetch(script);
  const sleeps = [];
  const errors = [];
  let counter = 0;
  const client = new EncoreClient({
    baseUrl: "http://encore.test/",
    fetch,
    storage: options.storage ?? new MemoryStorage(),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 1, // the jitter at its ceiling: the exponential sequence is visible
    newId: () => `id-${++counter}`,
    now: () => 1_795_000_000_000,
    onError: (error, events) => errors.push({ error, events }),
    ...options,
  });
  return { client, requests, sleeps, errors };
}

describe("emitting", () => {
  test("events get ids, times and the documented fields", () => {
    const { client } = makeClient();
    assert.equal(client.like("ana", "t1"), "id-1");
    client.skip("ana", "t2", { position_ms: 9000, duration_ms: 194754, context: { device: "web" } });
    client.play("ana", "t3", { event_id: "mine", ts: 5 });
    assert.deepEqual(client.pending(), [
      { user_id: "ana", track_id: "t1", type: "like", event_id: "id-1", ts: 1_795_000_000_000 },
      { position_ms: 9000, duration_ms: 194754, context: { device: "web" }, user_id: "ana", track_id: "t2",
        type: "skip", event_id: "id-2", ts: 1_795_000_000_000 },
      { user_id: "ana", track_id: "t3", type: "play", event_id: "mine", ts: 5 },
    ]);
  });

  test("the default ids are unique 32-hex strings", () => {
    const client = new EncoreClient({ baseUrl: "http://x", fetch: async () => new Response(null), storage: null });
    const ids = Array.from({ length: 500 }, () => client.play("u", "t"));
    assert.equal(new Set(ids).size, 500);
    assert.ok(ids.every((id) => /^[0-9a-f]{32}$/.test(id)));
  });
});

describe("batching", () => {
  test("flush sends batches of at most batchSize, in order, with the key", async () => {
    const { client, requests } = makeClient([], { batchSize: 3, apiKey: "k-write" });
    const ids = Array.from({ length: 7 }, (_, i) => client.play("u", `t${i}`));
    const result = await client.flush();
    assert.deepEqual(result, { sent: 7, rejected: 0, queued: 0 });
    assert.deepEqual(requests.map((r) => r.body.length), [3, 3, 1]);
    assert.deepEqual(requests.flatMap((r) => r.body.map((e) => e.event_id)), ids);
    assert.ok(requests.every((r) => r.url === "http://encore.test/v1/events" && r.method === "POST"));
    assert.ok(requests.every((r) => r.headers.authorization === "Bearer k-write"));
    assert.deepEqual(client.pending(), []);
    assert.equal(client.stats.batches, 3);
  });

  test("a second flush joins the one in flight", async () => {
    const { client, requests } = makeClient();
    client.play("u", "t");
    const [a, b] = await Promise.all([client.flush(), client.flush()]);
    assert.equal(a, b);
    assert.equal(requests.length, 1);
  });

  test("the timer flushes, and a full batch does not wait for it", async () => {
    const { client, requests } = makeClient([], { batchSize: 2, flushIntervalMs: 60_000 });
    client.start();
    client.play("u", "a");
    client.play("u", "b"); // full: flushed at once
    for (let i = 0; i < 100 && requests.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(requests.length, 1);
    client.play("u", "c");
    await client.close(); // sends the rest
    assert.deepEqual(requests.map((r) => r.body.length), [2, 1]);
  });
});

describe("retries", () => {
  test("5xx, 429 and network errors are retried with the same event ids", async () => {
    const { client, requests, sleeps } = makeClient([503, new TypeError("fetch failed"), 500, 429]);
    const ids = [client.play("u", "a"), client.like("u", "b")];
    assert.deepEqual(await client.flush(), { sent: 2, rejected: 0, queued: 0 });
    assert.equal(requests.length, 5);
    for (const request of requests) assert.deepEqual(request.body.map((e) => e.event_id), ids);
    assert.deepEqual(requests[0].body, requests[4].body); // the very same events
    assert.deepEqual(sleeps, [100, 200, 400, 800]);
    assert.equal(client.stats.retries, 4);
  });

  test("Retry-After is honoured on 429 and 503 (seconds or a date), capped", async () => {
    const now = 1_795_000_000_000;
    const date = new Date(now + 12_000).toUTCString();
    const busy = (status, value) => new Response("{}", { status, headers: { "retry-after": value } });
    const { client, sleeps } = makeClient([busy(429, "3"), busy(503, date), busy(503, "999"), busy(500, "9")],
      { maxRetryAfterMs: 30_000 });
    client.play("u", "t");
    await client.flush();
    assert.deepEqual(sleeps, [3000, 12_000, 30_000, 800]); // a 500's Retry-After is not the server's word
  });

  test("backoff is full jitter under the exponential ceiling", async () => {
    const draws = [0.5, 0.1, 0.9, 0.0];
    const { client, sleeps } = makeClient([503, 503, 503, 503], { random: () => draws.shift() });
    client.play("u", "t");
    await client.flush();
    assert.deepEqual(sleeps, [50, 20, 360, 0]);
    assert.deepEqual([0, 1, 2, 3, 10].map((a) => backoffCeiling(a)), [100, 200, 400, 800, 5000]);
  });

  test("a 4xx is not retried: the batch goes to onError and later batches still go", async () => {
    const body = { error: { code: "invalid_events", message: "1 of 2 events are invalid", details: [] } };
    const refusal = new Response(JSON.stringify(body), { status: 422 });
    const { client, requests, sleeps, errors } = makeClient([refusal], { batchSize: 2 });
    for (const t of ["a", "b", "c"]) client.play("u", t);
    assert.deepEqual(await client.flush(), { sent: 1, rejected: 2, queued: 0 });
    assert.equal(requests.length, 2);
    assert.deepEqual(sleeps, []);
    assert.equal(errors.length, 1);
    assert.ok(errors[0].error instanceof EventsRejected);
    assert.equal(errors[0].error.status, 422);
    assert.deepEqual(errors[0].error.body, body);
    assert.deepEqual(errors[0].events.map((e) => e.track_id), ["a", "b"]);
  });

  test("when retries run out the events stay queued for the next flush", async () => {
    const offline = () => new TypeError("fetch failed");
    const { client, requests } = makeClient([offline(), offline(), offline()], { maxRetries: 2 });
    const id = client.play("u", "t");
    assert.deepEqual(await client.flush(), { sent: 0, rejected: 0, queued: 1 });
    assert.deepEqual(client.pending().map((e) => e.event_id), [id]);
    assert.deepEqual(await client.flush(), { sent: 1, rejected: 0, queued: 0 });
    assert.deepEqual(requests.map((r) => r.body[0].event_id), [id, id, id, id]);
  });
});

describe("the offline buffer", () => {
  test("queued events survive a reload and are sent with their ids", async () => {
    const storage = new MemoryStorage();
    const offline = makeClient(Array(10).fill(new TypeError("offline")), { storage, maxRetries: 1 });
    const ids = [offline.client.like("ana", "t1"), offline.client.skip("ana", "t2")];
    await offline.client.flush();
    assert.ok(storage.getItem("encore.pending-events"), "the events are stored");

    // The page reloads: a new client over the same storage.
    const reloaded = makeClient([], { storage, newId: () => "never-used" });
    assert.deepEqual(reloaded.client.pending().map((e) => e.event_id), ids);
    assert.deepEqual(await reloaded.client.flush(), { sent: 2, rejected: 0, queued: 0 });
    assert.deepEqual(reloaded.requests[0].body.map((e) => e.event_id), ids);
    assert.equal(storage.getItem("encore.pending-events"), null, "delivered events leave the storage");
  });

  test("an event is stored the moment it is queued", () => {
    const storage = new MemoryStorage();
    const { client } = makeClient([], { storage, storageKey: "player-1" });
    client.complete("u", "t");
    assert.equal(JSON.parse(storage.getItem("player-1"))[0].type, "complete");
  });

  test("corrupt or failing storage never breaks the player", async () => {
    const corrupt = new MemoryStorage();
    corrupt.setItem("encore.pending-events", "{not json");
    const { client } = makeClient([], { storage: corrupt });
    assert.deepEqual(client.pending(), []);
    const failing = { getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("quota"); },
      removeItem: () => { throw new Error("denied"); } };
    const second = makeClient([], { storage: failing });
    second.client.play("u", "t");
    assert.deepEqual(await second.client.flush(), { sent: 1, rejected: 0, queued: 0 });
  });

  test("past maxQueued the oldest events are dropped and reported", () => {
    const { client, errors } = makeClient([], { maxQueued: 3 });
    for (const t of ["a", "b", "c", "d", "e"]) client.play("u", t);
    assert.deepEqual(client.pending().map((e) => e.track_id), ["c", "d", "e"]);
    assert.deepEqual(errors.flatMap((e) => e.events.map((x) => x.track_id)), ["a", "b"]);
    assert.equal(client.stats.dropped, 2);
  });
});

test("parseRetryAfter reads seconds and dates", () => {
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter("0.5"), 500);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter(new Date(1_000).toUTCString(), 4_000), 0);
});
