// The dashboard: two views (the pool, one miner) drawn from the JSON API. No framework, no build step.
// Every piece of text from the API goes in with textContent, never as HTML.
"use strict";

const REFRESH_MS = 60000;
const ADDRESS_RE = /^[A-Za-z0-9]{1,100}$/;
const SVG_NS = "http://www.w3.org/2000/svg";

// ----- small helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function formatHashrate(h) {
  if (h === null || h === undefined) return "–";
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];
  let i = 0;
  while (h >= 1000 && i < units.length - 1) { h /= 1000; i += 1; }
  // below 10 H/s (regtest, an axis between 0 and 1 H/s) two significant digits, not "1, 1, 1, 0"
  if (i === 0 && h > 0 && h < 10) return `${Number(h.toPrecision(2))} H/s`;
  return `${h.toFixed(h >= 100 || i === 0 ? 0 : 2)} ${units[i]}`;
}

// Amounts are integer base units; shown with 8 decimals without going through a float.
function formatAmount(units, symbol) {
  if (units === null || units === undefined) return "–";
  const negative = units < 0;
  const text = String(Math.abs(units)).padStart(9, "0");
  const whole = text.slice(0, -8);
  const fraction = text.slice(-8);
  return `${negative ? "-" : ""}${whole}.${fraction} ${symbol || ""}`.trim();
}

function formatDifficulty(d) {
  if (d === null || d === undefined) return "–";
  if (d === 0) return "0";
  if (d >= 1e6 || d < 0.001) return d.toExponential(3);
  return d.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// A span of seconds in the largest unit that keeps it readable ("3.2 days", "11,349 years").
function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "never (no hashrate)";
  const units = [["years", 31536000], ["days", 86400], ["hours", 3600], ["min", 60], ["s", 1]];
  for (const [name, size] of units) {
    if (seconds >= size) {
      const v = seconds / size;
      return `${v.toLocaleString("en-US", { maximumFractionDigits: v >= 100 ? 0 : 1 })} ${name}`;
    }
  }
  return seconds < 0.001 ? seconds.toExponential(1) + " s" : `${seconds.toFixed(3)} s`;
}

function formatChance(p) {
  if (p === null || p === undefined) return "–";
  if (p >= 0.9995) return "≈ 100%";
  if (p >= 0.001) return `${(p * 100).toFixed(p >= 0.1 ? 1 : 2)}%`;
  return p === 0 ? "0%" : `${(p * 100).toExponential(2)}%`;
}

function formatFraction(f) {
  // regtest: far past the network's difficulty
  if (f >= 1e6) return `${f.toExponential(2)} times`;
  if (f >= 10) return `${Number(f.toPrecision(3)).toLocaleString("en-US")} times`;
  if (f >= 0.001) return `${(f * 100).toLocaleString("en-US", { maximumFractionDigits: f >= 0.1 ? 1 : 3 })}%`;
  return `${(f * 100).toExponential(2)}%`;
}

// A hashrate with the share count behind it: a figure from few shares is a rough one, and says so.
function rateText(rate) {
  if (!rate) return "–";
  const rough = rate.shares < 100 ? " (rough)" : "";
  return `${formatHashrate(rate.hashrate)} from ${formatNumber(rate.shares)} shares${rough}`;
}

function bestText(best) {
  if (!best) return "–";
  const share = best.of_network === null ? "" : ` (${formatFraction(best.of_network)} of the network's)`;
  return `${formatDifficulty(best.difficulty)}${share}`;
}

// The odds of a block: expected time and the chance within a day, a week, a month, a year.
function oddsStats(o) {
  const c = o.chance_of_block || {};
  return [
    stat("Expected time to a block", formatDuration(o.expected_seconds_to_block), "odds"),
    stat("Chance of a block", `day ${formatChance(c.day)} · week ${formatChance(c.week)} · ` +
      `month ${formatChance(c.month)} · year ${formatChance(c.year)}`, "odds"),
  ];
}

function formatNumber(n) {
  return n === null || n === undefined ? "–" : n.toLocaleString("en-US");
}

function formatAgo(epochSeconds) {
  if (!epochSeconds) return "–";
  const seconds = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function formatTime(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–";
}

function timeCell(epochSeconds) {
  return el("td", { title: formatTime(epochSeconds) }, formatAgo(epochSeconds));
}

function short(text, keep) {
  if (!text) return "–";
  return text.length > 2 * keep + 1 ? `${text.slice(0, keep)}…${text.slice(-keep)}` : text;
}

function table(headers, rows, emptyText) {
  if (rows.length === 0) return el("p", { class: "empty" }, emptyText);
  return el("div", { class: "table-wrap" },
    el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
}

function stat(label, value, extraClass) {
  return el("div", { class: `stat ${extraClass || ""}`.trim() },
    el("div", { class: "stat-label" }, label),
    el("div", { class: "stat-value" }, value));
}

function badge(status) {
  return el("span", { class: `badge badge-${status}` }, status);
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

function showNotice(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text || "";
  notice.hidden = !text;
}

// ----- hashrate charts: uPlot (vendored from the npm registry, static/uPlot.*, MIT), over complete buckets

// The range every chart shows: 1h (per minute), 24h (per 10 minutes), 7d (per hour), 30d (per 6 hours).
const RANGES = { "1h": "last hour, per minute", "24h": "last 24 hours, per 10 minutes",
  "7d": "last 7 days, per hour", "30d": "last 30 days, per 6 hours" };
let chartRange = localStorage.getItem("chartRange") || "1h";
if (!(chartRange in RANGES)) chartRange = "1h";

function rangePicker() {
  return el("div", { class: "ranges", role: "group", "aria-label": "Chart range" },
    Object.keys(RANGES).map((r) => {
      const button = el("button", { type: "button", class: r === chartRange ? "active" : "", "data-range": r }, r);
      button.addEventListener("click", () => {
        chartRange = r;
        localStorage.setItem("chartRange", r);
        render();
      });
      return button;
    }));
}

// Charts are drawn at the width they get on the page: a card is made empty, placed, then drawn by
// drawCharts(), and drawn again when the window is resized. Each card keeps the series it drew in
// data-drawn (read back by the dashboard test: the chart shows what the page states).
const chartSeries = new WeakMap();

function chartCard(series, title) {
  const card = el("figure", { class: "chart-card" }, el("figcaption", {}, title));
  chartSeries.set(card, { series, title });
  return card;
}

const WORKER_COLOURS = ["#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#e67700"];

function hashrateChart(card, series, title, width) {
  const xs = series.points.map((p) => p[0]);
  const ys = series.points.map((p) => p[1]);
  // a miner's chart: one line per worker under the total (hover shows each value)
  const workers = (series.workers || []).length > 1 ? series.workers : [];
  const holder = el("div", { class: "chart", role: "img", "aria-label": title });
  card.append(holder);
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#1f6feb";
  const top = Math.max(0, ...ys);
  const chart = new uPlot({
    width, height: 220,
    scales: { x: { time: true }, y: { range: () => [0, top > 0 ? top * 1.1 : 1] } },  // local time on x
    axes: [{}, { size: 92, values: (u, ticks) => ticks.map((v) => formatHashrate(v)) }],
    series: [
      { value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleString()) },
      { label: workers.length ? "All workers" : "Hashrate", stroke: accent, width: 2, fill: `${accent}22`,
        points: { show: ys.length < 3 }, value: (u, v) => formatHashrate(v) },
      ...workers.map((w, i) => ({ label: w.name || "(default)", stroke: WORKER_COLOURS[i % WORKER_COLOURS.length],
        width: 1.5, value: (u, v) => formatHashrate(v) })),
    ],
    legend: { live: true },  // the values under the cursor, on hover
    hooks: {  // after each drawing: what was drawn, for whoever checks the chart against the page
      draw: [(u) => {
        card.dataset.drawn = JSON.stringify({ x: u.data[0], y: u.data[1], yMax: u.scales.y.max,
          workers: Object.fromEntries(workers.map((w, i) => [w.name, u.data[i + 2]])) });
      }],
    },
  }, [xs, ys, ...workers.map((w) => w.points.map((p) => p[1]))], holder);
  return chart;
}

function drawCharts() {
  for (const card of document.querySelectorAll(".chart-card")) {
    const entry = chartSeries.get(card);
    if (!entry || card.offsetParent === null) continue;
    const style = getComputedStyle(card);
    const inner = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = Math.max(320, Math.round(inner));
    if (entry.chart) { entry.chart.destroy(); entry.chart = null; }
    for (const old of card.querySelectorAll(".chart")) old.remove();
    entry.chart = hashrateChart(card, entry.series, entry.title, width);
  }
}

// ----- the pool view

async function renderPool() {
  const [pool, history, blocks, leaders, payouts] = await Promise.all([
    getJson("/api/pool"), getJson(`/api/pool/hashrate?range=${chartRange}`), getJson("/api/blocks?limit=25"),
    getJson("/api/leaderboard"), getJson("/api/payouts?limit=10"),
  ]);
  if (pool.status !== 200) throw new Error("the pool status is unavailable");
  showNotice(pool.body.database === "ok" || pool.body.database === "disabled" ? ""
    : "The statistics database is unreachable; live figures only.");

  document.getElementById("pool-coins").replaceChildren(...pool.body.coins.map((c) =>
    el("article", { class: "coin" },
      el("h3", {}, c.coin, el("span", { class: "tag" }, `${c.algorithm} · ${c.scheme} · fee ${c.fee_percent}%`)),
      el("div", { class: "stats" },
        stat("Hashrate", formatHashrate(c.hashrate), "big"),
        stat("Miners", formatNumber(c.miners)),
        stat("Workers", formatNumber(c.workers === null ? c.workers_online : c.workers)),
        stat("Connections", formatNumber(c.connections)),
        stat("Height", formatNumber(c.height)),
        stat("Network difficulty", formatDifficulty(c.network_difficulty)),
        stat("Blocks found", formatNumber(c.blocks_found)),
        stat("Last block", c.last_block ? `${c.last_block.height} (${formatAgo(c.last_block.found_at)})` : "–"),
        stat("Stratum port", String(c.stratum_port)),
        stat("Hashrate 10 min / 1 h / 24 h", c.rates && c.rates["10m"] ? ["10m", "1h", "24h"].map((k) => rateText(c.rates[k]))
          .join(" · ") : "–", "odds"),
        stat("Network hashrate", formatHashrate(c.network_hashrate)),
        ...oddsStats(c),
        stat("Blocks a year per TH/s", formatDifficulty(c.blocks_per_year_per_ths)),
        stat("Best share since the last block", bestText(c.best_share && c.best_share.since_block)),
        stat("Best share this session", bestText(c.best_share && c.best_share.session))),
      el("h4", {}, "Online devices by firmware"),
      table(["Firmware", "Online"], (c.devices || []).map((d) => el("tr", { class: "device-row" },
        el("td", { class: "firmware" }, d.firmware || "(none sent)"), el("td", { class: "num" }, formatNumber(d.online)))),
      "No devices online."))));

  const charts = document.getElementById("pool-charts");
  charts.replaceChildren(rangePicker(), ...(history.status === 200 ? history.body.series : []).map((s) =>
    chartCard(s, `${s.coin}, ${RANGES[chartRange]}`)));

  const blockRows = (blocks.status === 200 ? blocks.body.blocks : []).map((b) => el("tr", {},
    el("td", {}, b.coin), el("td", { class: "num" }, formatNumber(b.height)),
    el("td", { class: "mono", title: b.hash }, short(b.hash, 8)),
    el("td", {}, badge(b.status)), el("td", { class: "num" }, formatNumber(b.confirmations)),
    el("td", { class: "num" }, formatAmount(b.reward, b.symbol)),
    el("td", { class: "mono", title: b.finder }, minerLink(b.finder)),
    timeCell(b.found_at)));
  document.getElementById("pool-blocks").replaceChildren(table(
    ["Coin", "Height", "Hash", "Status", "Confirmations", "Reward", "Finder", "Found"], blockRows,
    "No blocks found yet."));

  document.getElementById("pool-leaders").replaceChildren(...(leaders.status === 200 ? leaders.body.coins : [])
    .map((c) => el("div", { class: "leader-card" },
      el("h3", {}, c.coin),
      table(["Miner", "Hashrate"], c.hashrate.map((r) => el("tr", {},
        el("td", { class: "mono" }, minerLink(r.address)), el("td", { class: "num" }, formatHashrate(r.hashrate)))),
      "Nobody mining right now."),
      el("h4", {}, "Best difficulty, high scores"),
      table(["Miner", "Best difficulty"], c.best_difficulty.map((r) => el("tr", { class: "best-row" },
        el("td", { class: "mono" }, minerLink(r.address)),
        el("td", { class: "num" }, formatDifficulty(r.best_difficulty)))), "No shares yet."),
      el("h4", {}, "Blocks found"),
      table(["Miner", "Blocks"], c.blocks.map((r) => el("tr", {},
        el("td", { class: "mono" }, minerLink(r.address)), el("td", { class: "num" }, formatNumber(r.blocks)))),
      "No blocks yet."))));

  const payoutRows = (payouts.status === 200 ? payouts.body.payouts : []).map((p) => el("tr", {},
    el("td", {}, p.coin), el("td", {}, badge(p.status)), el("td", { class: "num" }, formatAmount(p.total, p.symbol)),
    el("td", { class: "num" }, formatNumber(p.outputs)), el("td", { class: "mono", title: p.txid || "" },
      short(p.txid, 10)), timeCell(p.created_at)));
  document.getElementById("pool-payouts").replaceChildren(table(
    ["Coin", "Status", "Total", "Outputs", "Transaction", "Created"], payoutRows, "No payouts yet."));
}

function minerLink(address) {
  return el("a", { href: `#/miner/${encodeURIComponent(address)}` }, short(address, 10));
}

// ----- the miner view

async function renderMiner(address) {
  document.getElementById("miner-address").textContent = address;
  const holder = document.getElementById("miner-accounts");
  const [miner, history] = await Promise.all([
    getJson(`/api/miner/${encodeURIComponent(address)}`),
    getJson(`/api/miner/${encodeURIComponent(address)}/hashrate?range=${chartRange}`),
  ]);
  if (miner.status === 404) {
    holder.replaceChildren(el("p", { class: "empty" },
      "No shares from this address yet. Point your miner at the pool with it as the username."));
    return;
  }
  if (miner.status !== 200) throw new Error((miner.body && miner.body.error) || "the miner is unavailable");
  showNotice("");
  const seriesOf = {};
  for (const s of (history.status === 200 ? history.body.series : [])) seriesOf[s.coin] = s;
  holder.replaceChildren(...miner.body.accounts.map((a) => minerAccount(a, seriesOf[a.coin])));
}

function minerAccount(a, series) {
  const workers = a.workers.map((w) => el("tr", { class: w.hashrate > 0 ? "" : "idle" },
    el("td", { class: "worker-name" }, w.name || "(default)"),
    el("td", { class: "num", title: w.rates ? rateText(w.rates["10m"]) : "" }, formatHashrate(w.hashrate)),
    el("td", { class: "num" }, w.rates ? rateText(w.rates["1h"]) : "–"),
    el("td", { class: "firmware" }, w.connected ? (w.user_agent || "(none sent)") : "offline"),
    el("td", { class: "num" }, w.connected ? formatDifficulty(w.difficulty) : "–"),
    timeCell(w.last_share),
    el("td", { class: "num" }, formatDifficulty(w.best_difficulty)),
    el("td", { class: "num" }, formatNumber(w.accepted_24h)),
    el("td", { class: "num" }, formatNumber(w.rejected_24h))));
  const payouts = a.payouts.map((p) => el("tr", {},
    el("td", { class: "num" }, formatAmount(p.amount, a.symbol)), el("td", {}, badge(p.status)),
    el("td", { class: "mono", title: p.txid || "" }, p.txid ? short(p.txid, 12) : "–"),
    timeCell(p.finished_at || p.created_at)));
  const credits = a.credits.map((c) => el("tr", {},
    el("td", { class: "num" }, formatNumber(c.block_height)), el("td", { class: "num" }, formatAmount(c.amount, a.symbol)),
    el("td", {}, badge(c.status)), el("td", {}, c.scheme), timeCell(c.found_at)));
  return el("article", { class: "account" },
    el("h2", {}, a.coin),
    el("div", { class: "stats" },
      stat("Hashrate (10 min)", formatHashrate(a.hashrate), "big"),
      stat("Workers online", `${a.workers_online} / ${a.workers.length}`),
      stat("Best share", formatDifficulty(a.best_difficulty)),
      stat("Balance", formatAmount(a.balance, a.symbol), "balance"),
      stat("Pending", formatAmount(a.pending, a.symbol)),
      stat("Paid", formatAmount(a.paid, a.symbol)),
      stat("Shares 24 h", `${formatNumber(a.accepted_24h)} accepted, ${formatNumber(a.rejected_24h)} rejected`),
      stat("Hashrate 10 min / 1 h / 24 h", a.rates ? ["10m", "1h", "24h"].map((k) => rateText(a.rates[k]))
        .join(" · ") : "–", "odds"),
      stat("Network difficulty", formatDifficulty(a.network_difficulty)),
      ...oddsStats(a),
      stat("Best share since the last block", bestText(a.best_share && a.best_share.since_block)),
      stat("Best share this session", bestText(a.best_share && a.best_share.session)),
      stat("Best share ever", bestText(a.best_share && a.best_share.all_time))),
    series ? rangePicker() : null,
    series ? chartCard(series, `Hashrate, ${RANGES[chartRange]}`) : null,
    el("h3", {}, "Workers"),
    table(["Worker", "Hashrate", "1 h", "Firmware", "Difficulty", "Last share", "Best difficulty", "Accepted 24 h",
      "Rejected 24 h"], workers,
      "No workers yet."),
    el("h3", {}, "Payouts"),
    table(["Amount", "Status", "Transaction", "When"], payouts, "No payouts yet."),
    el("h3", {}, "Credits"),
    table(["Block", "Amount", "Status", "Scheme", "Found"], credits, "No credits yet."));
}

// ----- routing: #/ is the pool, #/miner/<address> (or ?address=) one miner

function currentAddress() {
  const match = location.hash.match(/^#\/miner\/([^/?#]+)$/);
  if (match) return decodeURIComponent(match[1]);
  const query = new URLSearchParams(location.search).get("address");
  return query && !location.hash.startsWith("#/") ? query : null;
}

let refreshTimer = null;

async function render() {
  clearTimeout(refreshTimer);
  const address = currentAddress();
  const onMiner = address !== null;
  document.getElementById("pool-view").hidden = onMiner;
  document.getElementById("miner-view").hidden = !onMiner;
  document.getElementById("nav-pool").classList.toggle("active", !onMiner);
  try {
    if (onMiner && !ADDRESS_RE.test(address)) {
      document.getElementById("miner-address").textContent = "";
      document.getElementById("miner-accounts").replaceChildren();
      showNotice("That is not an address: letters and digits only, at most 100.");
      return;
    }
    if (onMiner) {
      document.getElementById("lookup-address").value = address;
      await renderMiner(address);
    } else {
      await renderPool();
    }
    drawCharts();
    document.getElementById("updated").textContent = new Date().toISOString().slice(11, 19) + " UTC";
  } catch (error) {
    showNotice(`Could not load: ${error.message}`);
  }
  refreshTimer = setTimeout(render, REFRESH_MS);
}

document.getElementById("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const address = document.getElementById("lookup-address").value.trim();
  if (!ADDRESS_RE.test(address)) {
    showNotice("That is not an address: letters and digits only, at most 100.");
    return;
  }
  location.hash = `#/miner/${encodeURIComponent(address)}`;
});
window.addEventListener("hashchange", render);
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(drawCharts, 150);
});
render();
