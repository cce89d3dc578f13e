// Encore /listen: one listener's taste, live. Reads the profile, the recommendations (or a search)
// and the catalog average from the API; the buttons post real events to /v1/events, then the page
// waits for the profile version to move and reads the list again. No libraries, no external requests.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  const KEY_STORAGE = "encore-listen-key";
  const K = Math.min(30, Math.max(1, Number(params.get("k") || 10)));
  const WAIT_MS = 15000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const FEATURES = ["danceability", "energy", "valence", "acousticness", "instrumentalness", "liveness",
    "speechiness", "tempo", "loudness"];

  let apiKey = window.sessionStorage.getItem(KEY_STORAGE) || "";
  let user = params.get("user") || "";
  let catalog = null;
  let profile = null;
  let list = null; // {kind: "recs"|"search", items, request_id, query}
  let previousIds = new Set();
  let recsIds = new Set(); // the last recommendations shown: what "new" is measured against
  let query = "";
  let refreshes = 0;
  let pendingAfterAuth = null;

  class AuthError extends Error {}

  const $ = (id) => document.getElementById(id);
  const escapeHtml = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  function status(state, text) {
    document.body.dataset.state = state;
    $("status").textContent = text;
  }
  function banner(text) {
    $("banner").hidden = !text;
    $("banner").textContent = text || "";
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(path, options = {}) {
    const headers = { accept: "application/json", ...(options.headers || {}) };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const response = await fetch(path, { cache: "no-store", ...options, headers });
    if (response.status === 401 || response.status === 403) {
      let message = `the API answered ${response.status}`;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      throw new AuthError(message);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error.message : `HTTP ${response.status}`);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  function askForKey(message, retry) {
    pendingAfterAuth = retry;
    status("auth", "a key is needed");
    $("auth-reason").textContent = apiKey ? message : "";
    $("auth").hidden = false;
    $("auth-key").value = "";
    $("auth-key").focus();
  }

  async function guarded(action) {
    try {
      banner("");
      return await action();
    } catch (error) {
      if (error instanceof AuthError) {
        askForKey(error.message, action);
      } else {
        status("error", "error");
        banner(error.message || String(error));
      }
      return undefined;
    }
  }

  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey = $("auth-key").value.trim();
    window.sessionStorage.setItem(KEY_STORAGE, apiKey);
    $("auth").hidden = true;
    const retry = pendingAfterAuth;
    pendingAfterAuth = null;
    if (retry) guarded(retry);
  });

  // ---- reading ---------------------------------------------------------------------------------
  async function readProfile() {
    try {
      return await api(`/v1/users/${encodeURIComponent(user)}/profile`);
    } catch (error) {
      if (error.status === 404) return null; // no event applied yet
      throw error;
    }
  }

  async function readList() {
    if (query) {
      const body = await api(`/v1/search?${new URLSearchParams({ q: query, user_id: user, k: String(K) })}`);
      return { kind: "search", items: body.items, request_id: body.request_id, body };
    }
    const body = await api(`/v1/users/${encodeURIComponent(user)}/recommendations?k=${K}`);
    return { kind: "recs", items: body.items, request_id: body.request_id || null, body };
  }

  async function refresh(markNew) {
    if (!user) return;
    if (!catalog) catalog = await api("/v1/catalog/summary");
    const [p, l] = await Promise.all([readProfile(), readList()]);
    profile = p;
    previousIds = markNew ? recsIds : new Set();
    list = l;
    if (l.kind === "recs") recsIds = new Set(l.items.map((i) => i.track_id));
    render(markNew);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    status("live", `${user}: live`);
  }

  async function open(id) {
    user = id.trim();
    if (!user) return;
    const url = new URL(window.location.href);
    url.searchParams.set("user", user);
    window.history.replaceState(null, "", url);
    $("user").value = user;
    list = null;
    await refresh(false);
  }

  async function loadListeners() {
    try {
      const body = await api("/v1/listeners?limit=100");
      $("known-users").replaceChildren(...body.listeners.map((id) => {
        const option = document.createElement("option");
        option.value = id;
        return option;
      }));
    } catch (_) { /* a listener token may not list others: typing still works */ }
  }

  // ---- events ------------------------------------------------------------------------------------
  function eventFor(type, item) {
    const duration = 200000;
    const context = { source: list && list.kind === "search" ? "search" : "recommendations", device: "web" };
    if (list && list.request_id) context.request_id = list.request_id;
    const event = { event_id: newId(), user_id: user, track_id: item.track_id, type, ts: Date.now(), context };
    if (type === "skip") Object.assign(event, { position_ms: 8000, duration_ms: duration });
    if (type === "complete") Object.assign(event, { position_ms: duration, duration_ms: duration });
    if (type === "play") Object.assign(event, { position_ms: 0, duration_ms: duration });
    return event;
  }

  async function send(type, item, button) {
    const before = profile ? profile.profile_version : 0;
    const started = performance.now();
    document.querySelectorAll(".actions button").forEach((b) => { b.disabled = true; });
    status("waiting", `${type} sent, waiting for the profile…`);
    try {
      await api("/v1/events", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify(eventFor(type, item)) });
      button.classList.add("sent");
      const deadline = performance.now() + WAIT_MS;
      let fresh = null;
      while (performance.now() < deadline) {
        fresh = await readProfile();
        if (fresh && fresh.profile_version > before) break;
        await new Promise((r) => setTimeout(r, 80));
      }
      if (!fresh || fresh.profile_version <= before) {
        throw new Error(`the profile did not move within ${WAIT_MS / 1000} s: is the flow running?`);
      }
      // Back to the listener's recommendations: what the event changed is what this page shows.
      query = "";
      $("query").value = "";
      await refresh(true);
      const ms = Math.round(performance.now() - started);
      const added = list.items.filter((i) => !previousIds.has(i.track_id)).length;
      const line = $("last-change");
      line.dataset.ms = String(ms);
      line.dataset.version = String(profile.profile_version);
      line.textContent = `${type} on “${item.title}”: profile v${before} → v${profile.profile_version} and a new `
        + `list in ${ms} ms (${added} new track${added === 1 ? "" : "s"})`;
      const version = $("profile-version");
      version.classList.add("bumped");
      setTimeout(() => version.classList.remove("bumped"), 1200);
    } finally {
      document.querySelectorAll(".actions button").forEach((b) => { b.disabled = false; });
    }
  }

  // ---- rendering ---------------------------------------------------------------------------------
  function scaled(name, value) {
    const range = catalog && catalog.feature_ranges ? catalog.feature_ranges[name] : [0, 1];
    return Math.min(1, Math.max(0, (value - range[0]) / (range[1] - range[0])));
  }
  function unitText(name, value) {
    if (value == null) return "–";
    if (name === "tempo") return `${Math.round(value)} BPM`;
    if (name === "loudness") return `${value.toFixed(1)} dB`;
    return value.toFixed(2);
  }
  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function drawFeatures() {
    const chart = $("features-chart");
    const width = Math.max(320, chart.clientWidth || 480);
    const rowH = 30;
    const height = FEATURES.length * rowH + 8;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.replaceChildren();
    const left = 122;
    const right = 78;
    const barW = width - left - right;
    const audio = profile && profile.audio_profile;
    const average = catalog && catalog.audio_average;
    FEATURES.forEach((name, i) => {
      const y = 4 + i * rowH;
      chart.append(svg("text", { x: 0, y: y + 17 }, name));
      chart.append(svg("rect", { class: "track", x: left, y: y + 6, width: barW, height: 14, rx: 4 }));
      if (audio) {
        chart.append(svg("rect", { class: "you", x: left, y: y + 6, width: Math.max(2, barW * scaled(name, audio[name])),
          height: 14, rx: 4, "data-feature": name }));
      }
      if (average) {
        const x = left + barW * scaled(name, average[name]);
        chart.append(svg("rect", { class: "avg", x: x - 2, y: y + 2, width: 4, height: 22, rx: 2 }));
      }
      chart.append(svg("text", { class: "value", x: left + barW + 8, y: y + 17 },
        audio ? unitText(name, audio[name]) : "–"));
    });
  }

  function affinityList(id, entries) {
    const target = $(id);
    if (!entries || !entries.length) {
      target.innerHTML = '<li class="empty">none yet</li>';
      return;
    }
    const top = Math.max(...entries.map((e) => e.score));
    target.innerHTML = entries.slice(0, 6).map((e) => `<li data-name="${escapeHtml(e.name)}">`
      + `<span class="name" title="${escapeHtml(e.name)}">${escapeHtml(e.name)}</span>`
      + `<span class="bar" style="width:${Math.max(4, (90 * e.score) / top)}px"></span></li>`).join("");
  }

  function renderProfile() {
    const version = $("profile-version");
    version.textContent = profile ? `v${profile.profile_version}` : "v0 (new)";
    version.dataset.value = String(profile ? profile.profile_version : 0);
    $("as-of").textContent = profile && profile.as_of ? profile.as_of.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
    $("taste-words").textContent = profile && profile.taste_summary.length ? profile.taste_summary.join(", ") : "–";
    affinityList("top-genres", profile && profile.top_genres);
    affinityList("top-artists", profile && profile.top_artists);
    const analysis = profile && profile.taste_analysis;
    const drift = analysis && analysis.drift;
    $("drift").dataset.drifting = drift ? String(Boolean(drift.drifting)) : "";
    $("drift").textContent = drift ? (drift.drifting ? `drifting: learning ${drift.lr_multiplier}× faster`
      : `steady (${drift.detections} shift${drift.detections === 1 ? "" : "s"} so far)`) : "–";
    const own = analysis && analysis.engagement_model;
    $("own-model").textContent = own ? (own.own_model ? "learning from this listener" : "global model") : "–";
    $("counts").textContent = profile ? Object.entries(profile.counts).map(([k, v]) => `${v} ${k}`).join(" · ") || "–" : "–";
    $("skip-rate").textContent = profile ? `${Math.round(profile.skip_rate * 100)} %` : "–";
    $("listening-time").textContent = (analysis && analysis.listening_time) || "–";
    drawFeatures();
  }

  function renderList(markNew) {
    const target = $("tracks");
    $("back").hidden = !query;
    $("list-title").textContent = query ? "Search" : "Recommendations";
    const body = list.body;
    $("list-meta").textContent = query
      ? `${list.items.length} tracks${body.personalised ? ", blended with this listener's taste" : ""}`
      : `${body.cold_start ? "cold start · " : ""}${body.variant ? `variant ${body.variant} · ` : ""}k = ${K}`;
    const understood = $("understood");
    understood.hidden = !query;
    if (query) {
      understood.innerHTML = body.understood.length
        ? `understood ${body.understood.map((w) => `<b>${escapeHtml(w)}</b>`).join("")}` : "";
    }
    if (!list.items.length) {
      target.innerHTML = '<li class="empty">nothing to recommend</li>';
      return;
    }
    target.replaceChildren(...list.items.map((item, i) => {
      const li = document.createElement("li");
      const isNew = markNew && !previousIds.has(item.track_id);
      li.className = isNew ? "new" : "";
      li.dataset.trackId = item.track_id;
      li.dataset.genres = item.genres.join("|");
      li.innerHTML = `<span class="rank">${i + 1}</span><div><div><span class="title">${escapeHtml(item.title || item.track_id)}</span>`
        + ` <span class="artist">· ${escapeHtml(item.artist || "")}</span>${isNew ? '<span class="new-badge">new</span>' : ""}</div>`
        + `<div class="genres">${item.genres.slice(0, 3).map((g) => `<span class="genre-tag">${escapeHtml(g)}</span>`).join("")}</div>`
        + `<div class="reasons">${item.reasons.map(escapeHtml).join(" · ")}</div></div>`;
      const actions = document.createElement("div");
      actions.className = "actions";
      for (const type of ["play", "complete", "like", "skip", "dislike"]) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.action = type;
        button.textContent = type;
        button.addEventListener("click", () => guarded(() => send(type, item, button)));
        actions.append(button);
      }
      li.append(actions);
      return li;
    }));
  }

  function render(markNew) {
    renderProfile();
    renderList(markNew);
  }

  // ---- wiring ------------------------------------------------------------------------------------
  $("pick").addEventListener("submit", (event) => {
    event.preventDefault();
    query = "";
    $("query").value = "";
    guarded(() => open($("user").value));
  });
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    query = $("query").value.trim();
    guarded(() => refresh(false));
  });
  $("back").addEventListener("click", () => {
    query = "";
    $("query").value = "";
    guarded(() => refresh(false));
  });
  window.addEventListener("resize", () => { if (user) drawFeatures(); });

  status("idle", "pick a listener");
  guarded(async () => {
    await loadListeners();
    if (user) await open(user);
  });
  setInterval(() => { if (user && document.body.dataset.state === "live") guarded(() => refresh(false)); }, 10000);
})();
