// Encore /ops: polls /v1/ops/summary and /v1/ops/lag, keeps a few minutes of history in the tab,
// and draws it with hand-made SVG charts. No libraries, no external requests: it works offline.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  const INTERVAL_MS = Math.max(250, Number(params.get("interval") || 1) * 1000);
  const HISTORY_MS = 5 * 60 * 1000;
  const MIN_SPAN_MS = 30 * 1000;
  const PALETTE = ["#22d3ee", "#a78bfa", "#f472b6", "#34d399", "#fbbf24", "#60a5fa", "#fb7185",
    "#a3e635", "#f97316", "#2dd4bf", "#c084fc", "#facc15"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const KEY_STORAGE = "encore-ops-key";
  let apiKey = window.sessionStorage.getItem(KEY_STORAGE) || "";
  let waitingForKey = false;

  // The API refused the key (or wants one): the page asks for an admin key instead of polling.
  class AuthError extends Error {}

  const samples = [];
  const colors = new Map();
  let updates = 0;
  let namespacePrefix = "";

  const $ = (id) => document.getElementById(id);
  const intFmt = new Intl.NumberFormat("en-US");
  const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

  function fmtInt(value) {
    return value == null ? "–" : intFmt.format(Math.round(value));
  }
  function fmtRate(value) {
    if (value == null) return "–";
    return value >= 100 ? intFmt.format(Math.round(value)) : oneDecimal.format(value);
  }
  function fmtSeconds(value) {
    if (value == null) return "–";
    if (value < 10) return `${value.toFixed(value === 0 ? 0 : 2)} s`;
    if (value < 120) return `${value.toFixed(1)} s`;
    const minutes = Math.floor(value / 60);
    const seconds = Math.round(value % 60);
    return minutes < 120 ? `${minutes} m ${String(seconds).padStart(2, "0")} s` : `${(value / 3600).toFixed(1)} h`;
  }
  function fmtMs(value) {
    if (value == null) return "–";
    if (value < 1000) return `${Math.round(value)} ms`;
    return `${(value / 1000).toFixed(value < 10000 ? 2 : 1)} s`;
  }
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function colorFor(key) {
    if (!colors.has(key)) colors.set(key, PALETTE[colors.size % PALETTE.length]);
    return colors.get(key);
  }
  function shortTopic(topic) {
    return namespacePrefix && topic.startsWith(namespacePrefix) ? topic.slice(namespacePrefix.length) : topic;
  }
  function partitionKey(p) {
    return `${shortTopic(p.topic)} p${p.partition}`;
  }

  function setValue(id, raw, text) {
    const el = $(id);
    el.textContent = text;
    el.dataset.value = raw == null ? "" : String(raw);
  }
  function setLevel(id, level) {
    const el = $(id);
    if (el) el.dataset.level = level;
  }
  function setBadge(id, check, detail) {
    const el = $(id);
    el.dataset.ok = check == null ? "unknown" : String(Boolean(check.ok));
    el.querySelector(".detail").textContent = detail;
    el.title = check && !check.ok && check.error ? check.error : "";
  }

  // ---- charts ---------------------------------------------------------------------------------
  // The step between the chart's four gridlines: 1, 2, 2.5 or 5 times a power of ten (no 2.5 for
  // whole-number series such as lag in messages, and never below 1 for them).
  function niceStep(value, integer) {
    if (!(value > 0)) return 1;
    const exponent = Math.pow(10, Math.floor(Math.log10(value)));
    const fraction = value / exponent;
    const steps = integer && exponent < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    const step = steps.find((s) => fraction <= s) * exponent;
    return integer ? Math.max(1, Math.ceil(step)) : step;
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text != null) node.textContent = text;
    return node;
  }

  // series: [{key, label, color, points: [[t, v], ...]}]
  function drawChart(svg, series, format, legendId, integer = false) {
    const width = Math.max(200, svg.clientWidth || 600);
    const height = Math.max(120, svg.clientHeight || 200);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const pad = { left: 62, right: 12, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const now = Date.now();
    const first = samples.length ? samples[0].t : now;
    const span = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - first));
    const t0 = now - span;
    let maxValue = 0;
    for (const s of series) for (const [, v] of s.points) if (v != null && v > maxValue) maxValue = v;
    const yMax = 4 * niceStep((maxValue * 1.05) / 4, integer);
    const x = (t) => pad.left + ((t - t0) / span) * plotW;
    const y = (v) => pad.top + plotH - (v / yMax) * plotH;

    for (let i = 0; i <= 4; i += 1) {
      const value = (yMax * i) / 4;
      const yy = y(value);
      svg.appendChild(el("line", { class: "gridline", x1: pad.left, x2: width - pad.right, y1: yy, y2: yy }));
      svg.appendChild(el("text", { class: "axis", x: pad.left - 8, y: yy + 4, "text-anchor": "end" }, format(value)));
    }
    // Time ticks back from "now" at a round step (5 s ... 5 min), at most six of them.
    const step = [5, 10, 15, 30, 60, 120, 300].find((s) => span / 1000 / s <= 6) * 1000;
    for (let ago = 0; ago <= span; ago += step) {
      const seconds = Math.round(ago / 1000);
      const label = seconds === 0 ? "now" : seconds >= 120 ? `−${seconds / 60} m` : `−${seconds} s`;
      const anchor = ago === 0 ? "end" : ago + step > span ? "start" : "middle";
      svg.appendChild(el("text", { class: "axis", x: x(now - ago), y: height - 6, "text-anchor": anchor }, label));
    }
    const drawn = series.filter((s) => s.points.some(([, v]) => v != null));
    if (!drawn.length) {
      svg.appendChild(el("text", { class: "nodata", x: pad.left + plotW / 2, y: pad.top + plotH / 2, "text-anchor": "middle" },
        "collecting…"));
    }
    drawn.forEach((s, index) => {
      const points = s.points.filter(([t, v]) => v != null && t >= t0);
      if (!points.length) return;
      const line = points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      if (index === 0 && drawn.length <= 3) {
        const base = y(0).toFixed(1);
        const area = `${line}L${x(points[points.length - 1][0]).toFixed(1)},${base}L${x(points[0][0]).toFixed(1)},${base}Z`;
        svg.appendChild(el("path", { class: "area", d: area, fill: s.color }));
      }
      svg.appendChild(el("path", { class: "series", d: line, stroke: s.color, "data-key": s.key }));
      const [lt, lv] = points[points.length - 1];
      svg.appendChild(el("circle", { cx: x(lt), cy: y(lv), r: 3, fill: s.color }));
    });
    const legend = $(legendId);
    legend.innerHTML = series.map((s) => {
      const last = [...s.points].reverse().find(([, v]) => v != null);
      return `<span class="key"><span class="swatch" style="background:${s.color}"></span>${escapeHtml(s.label)} ` +
        `<span class="now">${last ? escapeHtml(format(last[1])) : "–"}</span></span>`;
    }).join("");
  }

  function seriesOf(pick, keys, labels, palette) {
    return keys.map((key, i) => ({
      key,
      label: labels ? labels[i] : key,
      color: palette ? palette[i] : colorFor(key),
      points: samples.map((s) => [s.t, pick(s, key)]),
    }));
  }

  function redraw() {
    const partitionKeys = [];
    for (const s of samples) for (const key of Object.keys(s.lag)) if (!partitionKeys.includes(key)) partitionKeys.push(key);
    partitionKeys.sort();
    drawChart($("chart-lag"), seriesOf((s, k) => s.lag[k] ?? null, partitionKeys), fmtInt, "legend-lag", true);
    drawChart($("chart-lag-seconds"), seriesOf((s, k) => s.lagSeconds[k] ?? null, partitionKeys), fmtSeconds,
      "legend-lag-seconds");
    drawChart($("chart-throughput"),
      seriesOf((s, k) => (s.rates ? s.rates[k] : null), ["events_per_s", "profile_writes_per_s", "dead_letters_per_s"],
        ["events/s", "profile writes/s", "dead letters/s"], ["#22d3ee", "#a78bfa", "#ef4444"]),
      fmtRate, "legend-throughput");
    drawChart($("chart-freshness"),
      seriesOf((s, k) => (s.freshness ? s.freshness[k] : null), ["p50_ms", "p90_ms", "p99_ms"], ["p50", "p90", "p99"],
        ["#34d399", "#fbbf24", "#f472b6"]),
      fmtMs, "legend-freshness");
  }

  // ---- panels ---------------------------------------------------------------------------------
  function renderHealth(summary) {
    const h = summary.health;
    setBadge("health-overall", { ok: summary.ready, error: summary.ready ? "" : "see the red checks" },
      summary.ready ? "ready" : "not ready");
    setBadge("health-redis", h.redis, h.redis.ok ? "ok" : "down");
    setBadge("health-kafka", h.kafka, h.kafka.ok ? "ok" : "down");
    setBadge("health-catalog", h.catalog, `${fmtInt(h.catalog.tracks)} tracks`);
    const age = h.flow_heartbeat.age_s;
    setBadge("health-flow", h.flow_heartbeat, age == null ? "never" : `${fmtSeconds(age)} ago`);
  }

  function renderStats(summary, lag) {
    const lagMessages = lag ? lag.lag_messages : null;
    const lagSeconds = lag ? lag.lag_seconds : null;
    setValue("lag-messages", lagMessages, fmtInt(lagMessages));
    setValue("lag-seconds", lagSeconds, fmtSeconds(lagSeconds));
    setLevel("stat-lag-messages", lagMessages == null ? "" : lagMessages === 0 ? "ok" : "warn");
    setLevel("stat-lag-seconds", lagSeconds == null ? "" : lagSeconds > 30 ? "bad" : lagSeconds > 5 ? "warn" : "ok");
    const rate = summary.rates ? summary.rates.events_per_s : null;
    setValue("events-rate", rate, fmtRate(rate));
    const fresh = summary.freshness;
    setValue("freshness-p50", fresh ? fresh.p50_ms : null, fmtMs(fresh ? fresh.p50_ms : null));
    setValue("freshness-p99", fresh ? fresh.p99_ms : null, fmtMs(fresh ? fresh.p99_ms : null));
    $("freshness-scope").textContent = fresh && fresh.scope === "all_time" ? "event → profile, all time" : "event → profile";
    const totals = summary.totals;
    setValue("events-processed", totals ? totals.events_processed : null, fmtInt(totals ? totals.events_processed : null));
    setValue("dead-letters", totals ? totals.dead_letters : null, fmtInt(totals ? totals.dead_letters : null));
    setLevel("stat-dead-letters", totals && totals.dead_letters > 0 ? "warn" : "ok");
  }

  function renderDeadLetters(summary) {
    const reasons = Object.entries(summary.dead_letters || {}).sort((a, b) => b[1] - a[1]);
    const box = $("dead-letter-bars");
    if (!reasons.length) {
      box.innerHTML = '<p class="empty">none: every message was applied</p>';
      return;
    }
    const max = Math.max(...reasons.map(([, n]) => n));
    box.innerHTML = reasons.map(([reason, count]) =>
      `<div class="bar-row"><span class="reason" title="${escapeHtml(reason)}">${escapeHtml(reason)}</span>` +
      `<span class="track"><span class="fill" style="display:block;width:${(100 * count / max).toFixed(1)}%"></span></span>` +
      `<span class="count">${fmtInt(count)}</span></div>`).join("");
  }

  function renderPartitions(lag) {
    const body = $("partition-rows");
    if (!lag) return;
    const rows = [];
    const maxLag = Math.max(1, ...lag.topics.flatMap((t) => t.partitions.map((p) => p.lag_messages)));
    for (const topic of lag.topics) {
      for (const p of topic.partitions) {
        const key = partitionKey(p);
        const cls = p.lag_messages > 0 ? "behind" : "caught-up";
        rows.push(`<tr data-key="${escapeHtml(key)}"><td>${escapeHtml(shortTopic(p.topic))}</td><td>${p.partition}</td>` +
          `<td>${fmtInt(p.end_offset)}</td><td>${fmtInt(p.processed_offset)}</td><td class="${cls}">${fmtInt(p.lag_messages)}</td>` +
          `<td><div class="minibar"><div style="width:${(100 * p.lag_messages / maxLag).toFixed(1)}%;background:${colorFor(key)}"></div></div></td>` +
          `<td class="${cls}">${fmtSeconds(p.lag_seconds)}</td><td>${fmtRate(p.rate_per_s)}</td></tr>`);
      }
      rows.push(`<tr class="total"><td>${escapeHtml(shortTopic(topic.topic))}</td><td>total</td><td></td><td></td>` +
        `<td>${fmtInt(topic.lag_messages)}</td><td></td><td>${fmtSeconds(topic.lag_seconds)}</td><td>${fmtRate(topic.rate_per_s)}</td></tr>`);
    }
    body.innerHTML = rows.length ? rows.join("") : '<tr><td colspan="8" class="empty">no partitions</td></tr>';
  }

  // ---- experiments ----------------------------------------------------------------------------
  function pct(rate) {
    return rate == null ? "–" : `${(100 * rate.rate).toFixed(1)} %<br><span class="ci">${(100 * rate.ci95[0]).toFixed(1)}–${(100 * rate.ci95[1]).toFixed(1)}</span>`;
  }

  function renderExperiments(body) {
    const panel = $("experiments-panel");
    const list = body ? body.experiments : [];
    panel.hidden = !list.length;
    $("experiments").innerHTML = list.map((e) => {
      const rows = e.variants.map((v) => `<tr data-variant="${escapeHtml(v.name)}" class="${e.verdict.winner === v.name ? "winner" : ""}">`
        + `<td>${escapeHtml(v.name)}</td><td>${Math.round(v.share * 100)} %</td><td>${fmtInt(v.plays)}</td>`
        + `<td>${fmtInt(v.counts.complete)}</td><td>${fmtInt(v.counts.like)}</td><td>${fmtInt(v.counts.skip)}</td>`
        + `<td>${fmtInt(v.counts.early_skip)}</td><td>${fmtInt(v.counts.dislike)}</td>`
        + `<td>${v.plays ? pct(v.rates.complete) : "–"}</td><td>${v.plays ? pct(v.rates.like) : "–"}</td>`
        + `<td>${v.plays ? pct(v.rates.early_skip) : "–"}</td><td>${v.plays ? pct(v.rates.dislike) : "–"}</td></tr>`).join("");
      return `<div class="experiment" data-name="${escapeHtml(e.name)}"><h3>${escapeHtml(e.name)}</h3>`
        + `<table class="variants"><thead><tr><th>variant</th><th>share</th><th>plays</th><th>completes</th><th>likes</th>`
        + `<th>skips</th><th>early skips</th><th>dislikes</th><th>complete rate</th><th>like rate</th><th>early skip rate</th>`
        + `<th>dislike rate</th></tr></thead><tbody>${rows}</tbody></table>`
        + `<p class="verdict" data-significant="${e.verdict.significant}" data-winner="${escapeHtml(e.verdict.winner || "")}">`
        + `${escapeHtml(e.verdict.summary)}</p></div>`;
    }).join("");
  }

  // ---- polling --------------------------------------------------------------------------------
  async function fetchJson(url) {
    const headers = { accept: "application/json" };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const response = await fetch(url, { cache: "no-store", headers });
    const body = await response.json();
    if (!response.ok) {
      const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
      if (response.status === 401 || response.status === 403) throw new AuthError(message);
      throw new Error(`${url}: ${message}`);
    }
    return body;
  }

  function askForKey(message) {
    waitingForKey = true;
    document.body.dataset.state = "auth";
    $("auth-reason").textContent = apiKey ? message : "";
    $("auth").hidden = false;
    $("updated").textContent = "waiting for a key";
    $("auth-key").focus();
  }

  $("auth").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    apiKey = $("auth-key").value.trim();
    window.sessionStorage.setItem(KEY_STORAGE, apiKey);
    $("auth").hidden = true;
    if (waitingForKey) {
      waitingForKey = false;
      loop();
    }
  });

  function record(summary, lag) {
    const sample = { t: Date.now(), lag: {}, lagSeconds: {}, rates: summary.rates, freshness: null };
    if (summary.freshness && summary.freshness.scope === "recent") sample.freshness = summary.freshness;
    if (lag) {
      for (const topic of lag.topics) {
        for (const p of topic.partitions) {
          sample.lag[partitionKey(p)] = p.lag_messages;
          sample.lagSeconds[partitionKey(p)] = p.lag_seconds;
        }
      }
    }
    samples.push(sample);
    while (samples.length && sample.t - samples[0].t > HISTORY_MS) samples.shift();
  }

  async function tick() {
    const [summaryResult, lagResult, experimentsResult] = await Promise.allSettled([
      fetchJson("/v1/ops/summary"), fetchJson("/v1/ops/lag"), fetchJson("/v1/experiments")]);
    const banner = $("banner");
    if (summaryResult.status === "rejected" && summaryResult.reason instanceof AuthError) {
      banner.hidden = true;
      askForKey(summaryResult.reason.message);
      return;
    }
    if (summaryResult.status === "rejected") {
      document.body.dataset.state = "error";
      banner.hidden = false;
      banner.textContent = `Cannot reach the Encore API: ${summaryResult.reason.message || summaryResult.reason}`;
      $("updated").textContent = "disconnected";
      return;
    }
    const summary = summaryResult.value;
    const lag = lagResult.status === "fulfilled" ? lagResult.value : null;
    if (!lag) {
      banner.hidden = false;
      banner.textContent = `Lag is unavailable: ${lagResult.reason.message || lagResult.reason}`;
    } else {
      banner.hidden = true;
    }
    namespacePrefix = `${summary.namespace}.`;
    $("namespace").textContent = summary.namespace;
    $("group").textContent = summary.group;
    record(summary, lag);
    renderHealth(summary);
    renderStats(summary, lag);
    renderDeadLetters(summary);
    renderPartitions(lag);
    renderExperiments(experimentsResult.status === "fulfilled" ? experimentsResult.value : null);
    redraw();
    updates += 1;
    document.body.dataset.updates = String(updates);
    document.body.dataset.state = "live";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  async function loop() {
    try {
      await tick();
    } catch (error) {
      document.body.dataset.state = "error";
      console.error(error);
    }
    if (!waitingForKey) window.setTimeout(loop, INTERVAL_MS);
  }

  $("interval").textContent = String(INTERVAL_MS / 1000);
  window.addEventListener("resize", () => redraw());
  loop();
})();
