/**
 * Encore's client for web players: batching, retries with the same event ids, and an offline buffer
 * that survives a page reload. No runtime dependencies: it needs `fetch` (browsers, Node >= 18) and,
 * for the offline buffer, a `localStorage`-like storage (injectable, e.g. for tests).
 *
 * Delivery: every event gets its `event_id` when it is queued, is written to the storage at once,
 * and leaves the storage only when `POST /v1/events` answered 2xx for it (or refused it with a 4xx
 * other than 429: then `onError` hears of it). A failed batch is retried with the same event ids, so
 * the flow applies it once. Network errors, 429 and 5xx are retried after the server's `Retry-After`
 * (429 and 503), else after a "full jitter" backoff; when the retries run out, the events stay
 * queued (and stored) for the next flush: a player that went offline sends them when it is back.
 */

import type { Accepted, ErrorResponse, Event, EventType, Recommendations } from "./types.js";

/** The part of `localStorage` the client uses. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** What the caller gives for one event; the client adds `event_id` and `ts` unless given. */
export type EventInput = Omit<Event, "event_id" | "ts"> & Partial<Pick<Event, "event_id" | "ts">>;

/** Extra fields of an event (position, duration, session, context). */
export type EventExtras = Omit<EventInput, "user_id" | "track_id" | "type">;

export class EventsRejected extends Error {
  constructor(readonly status: number, readonly body: ErrorResponse | string) {
    super(`HTTP ${status}: ${typeof body === "string" ? body : body.error.message}`);
    this.name = "EventsRejected";
  }
}

export interface EncoreClientOptions {
  /** The API's base URL, e.g. `https://encore.example.net`. */
  baseUrl: string;
  /** A key with the `write` scope (and `read` for `recommendations`), sent as a Bearer token. */
  apiKey?: string;
  /** Most events per request (the API takes up to 1000). Default 100. */
  batchSize?: number;
  /** How often the background timer flushes (after `start()`). Default 1000 ms. */
  flushIntervalMs?: number;
  /** Retries of one batch within one flush. Default 6. */
  maxRetries?: number;
  /** Backoff: full jitter over min(maxBackoffMs, baseBackoffMs * 2^attempt). Defaults 100 / 5000. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longest `Retry-After` honoured. Default 60000 ms. */
  maxRetryAfterMs?: number;
  /** Most events kept queued; beyond, the oldest are dropped (and reported). Default 10000. */
  maxQueued?: number;
  /** The offline buffer: `globalThis.localStorage` when there is one; `null` keeps events in memory. */
  storage?: KeyValueStorage | null;
  /** The storage key of the offline buffer. Default `encore.pending-events`. */
  storageKey?: string;
  /** Called for events that will not be delivered: refused (4xx) or dropped (queue full). */
  onError?: (error: Error, events: Event[]) => void;
  fetch?: FetchLike;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  newId?: () => string;
}

export interface FlushResult {
  sent: number;
  rejected: number;
  /** Events still queued after this flush (their batch ran out of retries, or arrived meanwhile). */
  queued: number;
}

export interface ClientStats {
  sent: number;
  batches: number;
  retries: number;
  rejected: number;
  dropped: number;
}

const DEFAULT_STORAGE_KEY = "encore.pending-events";

/** Seconds (or an HTTP date) of a `Retry-After` header, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Math.max(0, Number(text) * 1000);
  const when = Date.parse(text);
  return Number.isNaN(when) ? undefined : Math.max(0, when - nowMs);
}

/** The longest wait before retry number `attempt` (0-based). */
export function backoffCeiling(attempt: number, baseMs = 100, capMs = 5000): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

function defaultStorage(): KeyValueStorage | null {
  try {
    const candidate = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
    return candidate ?? null;
  } catch {
    return null; // e.g. storage disabled by the browser's privacy settings
  }
}

function defaultId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  let id = "";
  for (let i = 0; i < 32; i++) id += Math.floor(Math.random() * 16).toString(16);
  return id;
}

export class EncoreClient {
  readonly stats: ClientStats = { sent: 0, batches: 0, retries: 0, rejected: 0, dropped: 0 };
  private queue: Event[];
  private readonly baseUrl: string;
  private readonly options: Required<
    Pick<EncoreClientOptions, "batchSize" | "flushIntervalMs" | "maxRetries" | "baseBackoffMs" |
      "maxBackoffMs" | "maxRetryAfterMs" | "maxQueued" | "storageKey">
  >;
  private readonly storage: KeyValueStorage | null;
  private readonly fetchImpl: FetchLike;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly headers: Record<string, string>;
  private readonly onError?: (error: Error, events: Event[]) => void;
  private inflight: Promise<FlushResult> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: EncoreClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.options = {
      batchSize: options.batchSize ?? 100,
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      maxRetries: options.maxRetries ?? 6,
      baseBackoffMs: options.baseBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 5000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      maxQueued: options.maxQueued ?? 10_000,
      storageKey: options.storageKey ?? DEFAULT_STORAGE_KEY,
    };
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    const fetchImpl = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
    if (!fetchImpl) throw new Error("no fetch: pass options.fetch");
    this.fetchImpl = fetchImpl;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? defaultId;
    this.onError = options.onError;
    this.headers = { "content-type": "application/json" };
    if (options.apiKey) this.headers.authorization = `Bearer ${options.apiKey}`;
    this.queue = this.load();
  }

  // -- emitting ------------------------------------------------------------------------------

  /** Queue one event (stored at once); returns its event_id. */
  emit(input: EventInput): string {
    const event = { ...input, event_id: input.event_id ?? this.newId(), ts: input.ts ?? this.now() } as Event;
    this.queue.push(event);
    if (this.queue.length > this.options.maxQueued) {
      const dropped = this.queue.splice(0, this.queue.length - this.options.maxQueued);
      this.stats.dropped += dropped.length;
      this.onError?.(new Error(`queue full: dropped the ${dropped.length} oldest events`), dropped);
    }
    this.save();
    if (this.timer !== null && this.queue.length >= this.options.batchSize) void this.flush();
    return event.event_id;
  }

  play(userId: string, trackId: string, extras: EventExtras = {}): string {
    return this.track("play", userId, trackId, extras);
  }

  complete(userId: string, trackId: string, extras: EventExtras = {}): string {
    return this.track("complete", userId, trackId, extras);
  }

  like(userId: string, trackId: string, extras: EventExtras = {}): string {
    return this.track("like", userId, trackId, extras);
  }

  dislike(userId: string, trackId: string, extras: EventExtras = {}): string {
    return this.track("dislike", userId, trackId, extras);
  }

  skip(userId: string, trackId: string, extras: EventExtras = {}): string {
    return this.track("skip", userId, trackId, extras);
  }

  private track(type: EventType, userId: string, trackId: string, extras: EventExtras): string {
    return this.emit({ ...extras, user_id: userId, track_id: trackId, type });
  }

  /** The events not yet delivered, oldest first (a copy). */
  pending(): Event[] {
    return this.queue.map((e) => ({ ...e }));
  }

  // -- sending -------------------------------------------------------------------------------

  /** Send what is queued, batch by batch; one flush runs at a time (a second call joins it). */
  flush(): Promise<FlushResult> {
    if (this.inflight === null) {
      this.inflight = this.flushAll().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async flushAll(): Promise<FlushResult> {
    const result: FlushResult = { sent: 0, rejected: 0, queued: 0 };
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.options.batchSize);
      const outcome = await this.send(batch);
      if (outcome === "retry-later") break;
      this.forget(batch);
      if (outcome === "sent") result.sent += batch.length;
      else result.rejected += batch.length;
    }
    result.queued = this.queue.length;
    return result;
  }

  private async send(batch: Event[]): Promise<"sent" | "rejected" | "retry-later"> {
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await this.fetchImpl(`${this.baseUrl}/v1/events`, {
          method: "POST",
          headers: this.headers,
          body: JSON.stringify(batch),
        });
        if (response.ok) {
          await response.body?.cancel();
          this.stats.sent += batch.length;
          this.stats.batches += 1;
          return "sent";
        }
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          const text = await response.text();
          let body: ErrorResponse | string = text;
          try {
            body = JSON.parse(text) as ErrorResponse;
          } catch {
            // a proxy's HTML error page: keep the text
          }
          this.stats.rejected += batch.length;
          this.onError?.(new EventsRejected(response.status, body), batch);
          return "rejected";
        }
        await response.body?.cancel();
        if (response.status === 429 || response.status === 503) {
          retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.now());
        }
      } catch {
        // offline, DNS, connection reset: retried like a 5xx
      }
      if (attempt >= this.options.maxRetries) return "retry-later";
      this.stats.retries += 1;
      await this.sleep(this.delay(attempt, retryAfterMs));
    }
  }

  /** The wait before retry `attempt`: Retry-After (capped) when given, else full jitter. */
  delay(attempt: number, retryAfterMs?: number): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.options.maxRetryAfterMs);
    return this.random() * backoffCeiling(attempt, this.options.baseBackoffMs, this.options.maxBackoffMs);
  }

  private forget(batch: Event[]): void {
    const done = new Set(batch.map((e) => e.event_id));
    this.queue = this.queue.filter((e) => !done.has(e.event_id));
    this.save();
  }

  // -- the offline buffer --------------------------------------------------------------------

  private load(): Event[] {
    if (this.storage === null) return [];
    try {
      const raw = this.storage.getItem(this.options.storageKey);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      return Array.isArray(parsed) ? (parsed as Event[]) : [];
    } catch {
      return []; // unreadable (or corrupted) storage: start empty rather than fail
    }
  }

  private save(): void {
    if (this.storage === null) return;
    try {
      if (this.queue.length === 0) this.storage.removeItem(this.options.storageKey);
      else this.storage.setItem(this.options.storageKey, JSON.stringify(this.queue));
    } catch {
      // quota exceeded or storage disabled: the events stay in memory
    }
  }

  // -- the background timer ------------------------------------------------------------------

  /** Flush every `flushIntervalMs`, and as soon as a batch is full; in a browser, also when the
   * page comes back online. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
    target.addEventListener?.("online", this.onOnline);
  }

  /** Stop the timer, then send what is queued (what cannot be sent stays stored). */
  async close(): Promise<FlushResult> {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
      const target = globalThis as { removeEventListener?: (type: string, listener: () => void) => void };
      target.removeEventListener?.("online", this.onOnline);
    }
    return this.flush();
  }

  private readonly onOnline = (): void => {
    void this.flush();
  };

  // -- reads ---------------------------------------------------------------------------------

  /** `GET /v1/users/{userId}/recommendations` (needs the `read` scope). */
  async recommendations(userId: string, params: { k?: number; mood?: string; activity?: string } = {}):
    Promise<Recommendations> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, String(value));
    const text = query.toString();
    const suffix = text ? `?${text}` : "";
    const response = await this.fetchImpl(
      `${this.baseUrl}/v1/users/${encodeURIComponent(userId)}/recommendations${suffix}`,
      { headers: this.headers },
    );
    const body: unknown = await response.json();
    if (!response.ok) throw new EventsRejected(response.status, body as ErrorResponse);
    return body as Recommendations;
  }
}

export type { Accepted };
