// The latent-space explorer: plain JavaScript on the service's own /v1 API, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { models: [], model: null, map: null, ends: { a: null, b: null }, codes: null,
                examples: null, exampleIndex: 0, sampleTimer: null, decodeBusy: false, decodePending: null };
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

// -- the API --------------------------------------------------------------------------
function status(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(path, body) {
  const headers = {};
  const key = sessionStorage.getItem("vaekit-api-key");
  if (key) headers["X-API-Key"] = key;
  const init = { headers, method: body === undefined ? "GET" : "POST" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = { detail: res.statusText }; }
  if (res.status === 401) $("#key-box").hidden = false;
  if (!res.ok) throw new Error(`${res.status}: ${data && data.detail ? data.detail : res.statusText}`);
  return data;
}

const op = (name) => `/v1/models/${encodeURIComponent(state.model.name)}/${name}`;
const has = (name) => state.model && state.model.operations.includes(name);

function report(promise) {
  return promise.catch((err) => status(err.message, true));
}

// -- drawing rows of numbers as images ------------------------------------------------
function imageShape(shape) {
  if (shape.length === 3) return shape;                    // (C, H, W)
  if (shape.length === 2) return [1, shape[0], shape[1]];
  const d = shape[0], side = Math.round(Math.sqrt(d));
  return side * side === d ? [1, side, side] : [1, 1, d];
}

function rowToImageData(row, shape) {
  const [c, h, w] = imageShape(shape);
  let lo = 0, hi = 1;
  const range = state.model.info.value_range;
  if (!range || range[0] !== 0 || range[1] !== 1) {         // other units: stretch to the row's range
    lo = Math.min(...row); hi = Math.max(...row);
    if (hi - lo < 1e-12) hi = lo + 1;
  }
  const img = new ImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x, o = p * 4;
      for (let k = 0; k < 3; k++) {
        const v = row[(c === 3 ? k : 0) * h * w + p];
        img.data[o + k] = Math.round(255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
      }
      img.data[o + 3] = 255;
    }
  }
  return img;
}

function drawRow(canvas, row, shape, x = 0, y = 0, size = canvas.width) {
  const img = rowToImageData(row, shape);
  const tmp = document.createElement("canvas");
  tmp.width = img.width; tmp.height = img.height;
  tmp.getContext("2d").putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const scale = size / Math.max(img.width, img.height);
  ctx.drawImage(tmp, x, y, img.width * scale, img.height * scale);
}

function bump(canvas) {
  canvas.dataset.version = String(Number(canvas.dataset.version || 0) + 1);
}

// -- samples --------------------------------------------------------------------------
async function refreshSamples() {
  const canvas = $("#samples");
  const cols = 8, rows = 4, n = cols * rows;
  const seed = Math.floor(Math.random() * 2147483647);
  const out = await api(op("sample"), { n, seed });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const cell = Math.floor(Math.min(canvas.width / cols, canvas.height / rows));
  out.x.forEach((row, i) => drawRow(canvas, row, out.shape, (i % cols) * cell, Math.floor(i / cols) * cell, cell - 2));
  $("#samples-seed").textContent = `seed ${out.seed}`;
  bump(canvas);
}

function setAutoRefresh(on) {
  clearInterval(state.sampleTimer);
  state.sampleTimer = on ? setInterval(() => report(refreshSamples()), 3000) : null;
}

// -- latent map -----------------------------------------------------------------------
function mapToCanvas(u, v) {
  const [u0, u1, v0, v1] = state.map.extent, c = $("#map");
  return [((u - u0) / (u1 - u0)) * c.width, (1 - (v - v0) / (v1 - v0)) * c.height];
}

function canvasToMap(px, py) {
  const [u0, u1, v0, v1] = state.map.extent, c = $("#map");
  return [u0 + (px / c.width) * (u1 - u0), v0 + (1 - py / c.height) * (v1 - v0)];
}

function drawMap(marker) {
  const c = $("#map"), ctx = c.getContext("2d"), m = state.map;
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.strokeStyle = "#e3e6ec";
  const [ox, oy] = mapToCanvas(0, 0);
  ctx.beginPath(); ctx.moveTo(ox, 0); ctx.lineTo(ox, c.height); ctx.moveTo(0, oy); ctx.lineTo(c.width, oy); ctx.stroke();
  m.points.forEach(([u, v], i) => {
    const [x, y] = mapToCanvas(u, v);
    ctx.fillStyle = m.labels ? PALETTE[m.labels[i] % PALETTE.length] : "#4a6fa5";
    ctx.globalAlpha = 0.65;
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  ctx.globalAlpha = 1;
  if (marker) {
    const [x, y] = mapToCanvas(marker[0], marker[1]);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.stroke();
    ctx.lineWidth = 1;
  }
  bump(c);
}

async function loadMap() {
  state.map = await api(op("latent-map"));
  $("#map-method").textContent = `(axes: ${state.map.method}; ${state.map.points.length} data points)`;
  const legend = $("#map-legend");
  legend.textContent = "";
  if (state.map.labels) {
    [...new Set(state.map.labels)].sort((a, b) => a - b).forEach((l) => {
      const s = document.createElement("span"), dot = document.createElement("i");
      dot.style.background = PALETTE[l % PALETTE.length];
      s.append(dot, String(l));
      legend.append(s);
    });
  }
  drawMap(null);
}

function latentPoint(u, v) {
  const m = state.map;
  return m.center.map((c, j) => c + u * m.basis[0][j] + v * m.basis[1][j]);
}

async function decodeMapPoint(ev) {
  if (!state.map) return;
  const c = $("#map"), r = c.getBoundingClientRect();
  const [u, v] = canvasToMap((ev.clientX - r.left) * (c.width / r.width), (ev.clientY - r.top) * (c.height / r.height));
  drawMap([u, v]);
  const out = await api(op("decode"), { z: [latentPoint(u, v)] });
  const target = $("#map-decoded");
  drawRow(target, out.x[0], out.shape);
  $("#map-coords").textContent = `u = ${u.toFixed(2)}, v = ${v.toFixed(2)}`;
  bump(target);
}

// -- interpolation --------------------------------------------------------------------
function padRow(canvas) {
  const [c, h, w] = imageShape(state.model.info.data_shape || [state.model.info.input_dim]);
  const tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  const ctx = tmp.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(canvas, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data, row = new Array(c * h * w);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < c; k++) {
      row[k * h * w + p] = (c === 3 ? px[p * 4 + k] : (px[p * 4] + px[p * 4 + 1] + px[p * 4 + 2]) / 3) / 255;
    }
  }
  return row;
}

function clearPad(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function setupPad(panel) {
  const end = panel.dataset.end, canvas = panel.querySelector("canvas");
  clearPad(canvas);
  let drawing = false, last = null;
  const pos = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * (canvas.width / r.width), (ev.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (ev) => { drawing = true; last = pos(ev); canvas.setPointerCapture(ev.pointerId); });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const p = pos(ev), ctx = canvas.getContext("2d");
    const side = imageShape(state.model.info.data_shape || [state.model.info.input_dim])[2];
    ctx.strokeStyle = "#fff"; ctx.lineCap = "round"; ctx.lineWidth = Math.max(8, (1.8 * canvas.width) / side);
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    last = p;
  });
  const finish = () => {
    if (!drawing) return;
    drawing = false;
    state.ends[end] = padRow(canvas);
    report(updateInterpolation());
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointerleave", finish);
  panel.querySelector('[data-act="clear"]').addEventListener("click", () => {
    clearPad(canvas); state.ends[end] = null; state.codes = null;
  });
  panel.querySelector('[data-act="example"]').addEventListener("click", () => report(useExample(end, canvas)));
  panel.querySelector('[data-act="upload"]').addEventListener("change", (ev) => report(uploadImage(ev, end, canvas)));
}

async function useExample(end, canvas) {
  if (!state.examples) state.examples = await api(op("examples"));
  if (!state.examples.x.length) throw new Error("this model has no example inputs; draw or upload one");
  const row = state.examples.x[state.exampleIndex++ % state.examples.x.length];
  clearPad(canvas);
  drawRow(canvas, row, state.examples.shape);
  state.ends[end] = row;
  await updateInterpolation();
}

async function uploadImage(ev, end, canvas) {
  const file = ev.target.files[0];
  if (!file) return;
  const bitmap = await createImageBitmap(file);
  clearPad(canvas);
  const ctx = canvas.getContext("2d"), s = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  ctx.drawImage(bitmap, (canvas.width - bitmap.width * s) / 2, (canvas.height - bitmap.height * s) / 2,
                bitmap.width * s, bitmap.height * s);
  let row = padRow(canvas);
  const mean = row.reduce((a, b) => a + b, 0) / row.length;
  if (mean > 0.5) {               // dark ink on a light background: the models expect bright ink
    row = row.map((v) => 1 - v);
    status("uploaded image inverted (bright ink on dark, as the model was trained)");
  }
  clearPad(canvas);
  drawRow(canvas, row, state.model.info.data_shape);
  state.ends[end] = row;
  ev.target.value = "";
  await updateInterpolation();
}

async function updateInterpolation() {
  if (!state.ends.a || !state.ends.b) {
    status("draw or choose the other input too");
    return;
  }
  const enc = await api(op("encode"), { x: [state.ends.a, state.ends.b] });
  state.codes = enc.mean;
  const steps = 8, path = await api(op("interpolate"), { a: state.ends.a, b: state.ends.b, steps });
  const strip = $("#interp-strip"), ctx = strip.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, strip.width, strip.height);
  const cell = Math.min(strip.width / steps, strip.height);
  path.x.forEach((row, i) => drawRow(strip, row, path.shape, i * cell, 0, cell - 2));
  bump(strip);
  status("");
  await decodeSlider();
}

async function decodeSlider() {
  const t = Number($("#interp-t").value) / 100;
  $("#interp-t-out").textContent = `t = ${t.toFixed(2)}`;
  if (!state.codes) return;
  if (state.decodeBusy) { state.decodePending = t; return; }   // keep only the latest position
  state.decodeBusy = true;
  try {
    const [za, zb] = state.codes;
    const out = await api(op("decode"), { z: [za.map((a, j) => (1 - t) * a + t * zb[j])] });
    const view = $("#interp-view");
    drawRow(view, out.x[0], out.shape);
    bump(view);
  } finally {
    state.decodeBusy = false;
  }
  if (state.decodePending !== null) { state.decodePending = null; await decodeSlider(); }
}

// -- anomaly scores -------------------------------------------------------------------
function parseCSV(text) {
  const sep = text.split("\n", 1)[0].includes("\t") && !text.split("\n", 1)[0].includes(",") ? "\t" : ",";
  const rows = []; let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === sep) { row.push(field); field = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = "";
      if (row.length > 1 || row[0] !== "") rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}

const MISSING = new Set(["", "na", "nan", "null", "none", "n/a"]);

function toRecords(table) {
  const header = table[0].map((h) => h.trim()), cols = state.model.info.columns;
  const index = Object.fromEntries(header.map((h, i) => [h, i]));
  const absent = cols.filter((c) => !(c.name in index)).map((c) => c.name);
  const extra = header.filter((h) => !cols.some((c) => c.name === h));
  let coerced = 0;
  const records = table.slice(1).map((cells) => {
    const rec = {};
    cols.forEach((c) => {
      const raw = c.name in index ? (cells[index[c.name]] || "").trim() : "";
      if (MISSING.has(raw.toLowerCase())) { rec[c.name] = null; return; }
      if (c.type === "numeric") {
        const v = Number(raw);
        if (Number.isFinite(v)) rec[c.name] = v; else { rec[c.name] = null; coerced++; }
      } else rec[c.name] = raw;
    });
    return rec;
  });
  return { records, absent, extra, coerced };
}

async function scoreCSV(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  const { records, absent, extra, coerced } = toRecords(parseCSV(await file.text()));
  if (!records.length) throw new Error("the CSV has a header but no rows");
  const chunk = state.model.limits.max_rows, results = [];
  for (let i = 0; i < records.length; i += chunk) {
    status(`scoring rows ${i + 1}-${Math.min(i + chunk, records.length)} of ${records.length} ...`);
    const out = await api(op("score"), { rows: records.slice(i, i + chunk), top_k: 3 });
    out.scores.forEach((s, j) => results.push({ row: i + j + 1, score: s, label: out.labels[j], top: out.top_features[j] }));
    state.threshold = out.threshold;
  }
  const notes = [];
  if (extra.length) notes.push(`left out: ${extra.join(", ")}`);
  if (absent.length) notes.push(`missing columns (treated as missing values): ${absent.join(", ")}`);
  if (coerced) notes.push(`${coerced} non-numeric cell(s) in numeric columns treated as missing`);
  status(notes.join("; "));
  const flagged = results.filter((r) => r.label === 1).length;
  $("#score-summary").textContent = `${results.length} rows, ${flagged} above the threshold ` +
    `${state.threshold.toPrecision(4)} (${((100 * flagged) / results.length).toFixed(1)}%)`;
  drawHistogram(results.map((r) => r.score), state.threshold);
  const body = $("#score-table tbody");
  body.textContent = "";
  results.sort((a, b) => b.score - a.score).slice(0, 500).forEach((r) => {
    const tr = document.createElement("tr");
    const cells = [String(r.row), r.score.toPrecision(5), r.label ? "anomaly" : "normal",
                   r.top.map((f) => `${f.feature} ${(100 * f.share).toFixed(0)}%`).join(", ")];
    cells.forEach((text, k) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (k === 2) td.className = r.label ? "bad" : "ok";
      tr.append(td);
    });
    body.append(tr);
  });
  ev.target.value = "";
}

function drawHistogram(scores, threshold) {
  const c = $("#score-hist"), ctx = c.getContext("2d"), bins = 30, pad = 28;
  const sorted = [...scores].sort((a, b) => a - b);
  const lo = sorted[0], hi = Math.max(sorted[Math.floor(0.99 * (sorted.length - 1))], Math.min(threshold * 1.1, sorted.at(-1)));
  const width = (hi - lo) / bins || 1, counts = new Array(bins).fill(0);
  scores.forEach((s) => { counts[Math.min(bins - 1, Math.max(0, Math.floor((s - lo) / width)))]++; });
  const top = Math.max(...counts);
  ctx.clearRect(0, 0, c.width, c.height);
  const w = (c.width - 2 * pad) / bins, h = c.height - 2 * pad;
  counts.forEach((n, i) => {
    const x0 = lo + i * width;
    ctx.fillStyle = x0 + width > threshold ? "#c0392b" : "#5b84c4";
    ctx.fillRect(pad + i * w + 1, pad + h - (n / top) * h, w - 2, (n / top) * h);
  });
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
  ctx.fillText(lo.toPrecision(3), pad, c.height - 8);
  ctx.fillText(`${hi.toPrecision(3)}${sorted.at(-1) > hi ? "+" : ""}`, c.width - pad - 40, c.height - 8);
  ctx.fillText(`max count ${top}`, pad, 14);
  if (threshold >= lo && threshold <= hi) {
    const x = pad + ((threshold - lo) / (hi - lo)) * (c.width - 2 * pad);
    ctx.strokeStyle = "#000"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x, pad - 6); ctx.lineTo(x, pad + h); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillText("threshold", x + 3, pad - 8);
  }
  bump(c);
}

// -- recommendations ------------------------------------------------------------------
async function recommend(ev) {
  ev.preventDefault();
  const history = $("#rec-history").value.split(",").map((s) => s.trim()).filter(Boolean);
  const out = await api(op("recommend"), { history, k: Math.max(1, Number($("#rec-k").value) || 10) });
  const list = $("#rec-list");
  list.textContent = "";
  out.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.textContent = `${item}  (${out.scores[i].toFixed(3)})`;
    list.append(li);
  });
  $("#rec-note").textContent = out.note;
}

// -- sentences -------------------------------------------------------------------------
function fillList(list, lines) {
  list.textContent = "";
  lines.forEach((line) => {
    const li = document.createElement("li");
    li.textContent = line || "(empty sentence)";
    list.append(li);
  });
}

async function generateText() {
  const out = await api(op("generate"), {
    n: 8, strategy: $("#text-strategy").value,
    temperature: Math.max(0.05, Number($("#text-temperature").value) || 1.0),
  });
  fillList($("#text-samples"), out.sentences);
  $("#text-samples").dataset.seed = out.seed;
}

async function interpolateText(ev) {
  ev.preventDefault();
  const out = await api(op("interpolate"), { a: $("#text-a").value, b: $("#text-b").value, steps: 8 });
  state.textPath = out.sentences;
  fillList($("#text-path"), out.sentences);
  const slider = $("#text-t");
  slider.max = String(out.sentences.length - 1);
  slider.disabled = false;
  showTextStep();
  $("#text-note").textContent = out.unknown.length ? `not in the vocabulary (read as <unk>): ${out.unknown.join(", ")}` : "";
}

function showTextStep() {
  if (!state.textPath) return;
  const i = Number($("#text-t").value);
  $("#text-current").textContent = state.textPath[i] || "(empty sentence)";
  $("#text-t-out").textContent = `step ${i + 1} of ${state.textPath.length}`;
  $("#text-path").querySelectorAll("li").forEach((li, j) => li.classList.toggle("current", j === i));
}

// -- molecules -------------------------------------------------------------------------
// drawings come from the server's RDKit as SVG text and are shown as <img> data URLs,
// which cannot run scripts
const svgURL = (svg) => (svg ? `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(svg)))}` : "");

async function drawings(smiles) {
  const wanted = smiles.map((s) => s || "");
  if (!wanted.some(Boolean)) return wanted.map(() => "");
  const out = await api(op("draw"), { smiles: wanted.map((s) => s || "*") });
  return out.svg.map((svg, i) => (wanted[i] ? svg : ""));
}

function molCaption(m) {
  if (!m.valid) return "(not a molecule)";
  return `${m.smiles}  QED ${Number(m.qed).toFixed(2)}  logP ${Number(m.logp).toFixed(1)}`;
}

async function generateMolecules() {
  const out = await api(op("generate"), {
    n: 8, temperature: Math.max(0.05, Number($("#mol-temperature").value) || 1.0),
  });
  const svgs = await drawings(out.molecules.map((m) => (m.valid ? m.smiles : "")));
  const grid = $("#mol-samples");
  grid.textContent = "";
  out.molecules.forEach((m, i) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = m.smiles || "not a molecule";
    if (svgs[i]) img.src = svgURL(svgs[i]);
    const cap = document.createElement("figcaption");
    cap.textContent = molCaption(m);
    fig.append(img, cap);
    grid.append(fig);
  });
  grid.dataset.seed = out.seed;
}

async function interpolateMolecules(ev) {
  ev.preventDefault();
  const a = $("#mol-a").value.trim(), b = $("#mol-b").value.trim();
  const out = await api(op("interpolate"), { a, b, steps: 8 });
  const ends = await api(op("draw"), { smiles: [a, b] });
  $("#mol-a-img").src = svgURL(ends.svg[0]);
  $("#mol-b-img").src = svgURL(ends.svg[1]);
  state.molPath = out.molecules;
  state.molSVG = await drawings(out.molecules.map((m) => (m.valid ? m.smiles : "")));
  const slider = $("#mol-t");
  slider.max = String(out.molecules.length - 1);
  slider.disabled = false;
  showMoleculeStep();
}

function showMoleculeStep() {
  if (!state.molPath) return;
  const i = Number($("#mol-t").value);
  const img = $("#mol-current-img");
  if (state.molSVG[i]) img.src = svgURL(state.molSVG[i]); else img.removeAttribute("src");
  $("#mol-current").textContent = molCaption(state.molPath[i]);
  $("#mol-t-out").textContent = `step ${i + 1} of ${state.molPath.length}`;
}

// -- choosing a model -----------------------------------------------------------------
async function selectModel(name) {
  delete document.body.dataset.model;   // set again once the model's panels are drawn
  state.model = state.models.find((m) => m.name === name);
  Object.assign(state, { map: null, ends: { a: null, b: null }, codes: null, examples: null, exampleIndex: 0 });
  setAutoRefresh(false);
  $("#samples-auto").checked = false;
  $("#model-kind").textContent = state.model.kind;
  $("#info").textContent = JSON.stringify({ ...state.model.info, limits: state.model.limits }, null, 2);
  const image = state.model.kind === "image";
  $("#samples-panel").hidden = !has("sample");
  $("#map-panel").hidden = !(has("latent-map") && has("decode"));
  $("#interp-panel").hidden = !(image && has("interpolate"));
  $("#score-panel").hidden = !has("score");
  $("#rec-panel").hidden = !has("recommend");
  $("#text-panel").hidden = state.model.kind !== "text";
  $("#mol-panel").hidden = state.model.kind !== "molecule";
  state.molPath = null;
  $("#mol-samples").textContent = ""; $("#mol-current").textContent = ""; $("#mol-t-out").textContent = "";
  $("#mol-t").disabled = true;
  ["#mol-a-img", "#mol-b-img", "#mol-current-img"].forEach((s) => $(s).removeAttribute("src"));
  state.textPath = null;
  ["#text-samples", "#text-path"].forEach((s) => { $(s).textContent = ""; });
  $("#text-current").textContent = ""; $("#text-t-out").textContent = ""; $("#text-t").disabled = true;
  document.querySelectorAll(".pad").forEach(clearPad);
  ["#interp-view", "#map-decoded", "#interp-strip", "#samples"].forEach((s) => clearPad($(s)));
  if (has("recommend")) $("#rec-history").placeholder = `e.g. ${state.model.info.popular_items.slice(0, 3).join(", ")}`;
  status("");
  const jobs = [];
  if (has("sample")) jobs.push(refreshSamples());
  if (state.model.kind === "text") jobs.push(generateText());
  if (state.model.kind === "molecule") jobs.push(generateMolecules());
  if (!$("#map-panel").hidden) jobs.push(loadMap());
  await Promise.all(jobs);
  document.body.dataset.model = name;
}

async function init() {
  $("#key-box").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("vaekit-api-key", $("#api-key").value);
    $("#key-box").hidden = true;
    report(start());
  });
  $("#model").addEventListener("change", (ev) => report(selectModel(ev.target.value)));
  $("#samples-refresh").addEventListener("click", () => report(refreshSamples()));
  $("#samples-auto").addEventListener("change", (ev) => setAutoRefresh(ev.target.checked));
  $("#map").addEventListener("click", (ev) => report(decodeMapPoint(ev)));
  $("#interp-t").addEventListener("input", () => report(decodeSlider()));
  $("#csv-file").addEventListener("change", (ev) => report(scoreCSV(ev)));
  $("#rec-form").addEventListener("submit", (ev) => report(recommend(ev)));
  $("#text-generate").addEventListener("click", () => report(generateText()));
  $("#text-interp-form").addEventListener("submit", (ev) => report(interpolateText(ev)));
  $("#text-t").addEventListener("input", showTextStep);
  $("#mol-generate").addEventListener("click", () => report(generateMolecules()));
  $("#mol-interp-form").addEventListener("submit", (ev) => report(interpolateMolecules(ev)));
  $("#mol-t").addEventListener("input", showMoleculeStep);
  document.querySelectorAll(".endpoint").forEach(setupPad);
  await report(start());
}

async function start() {
  const { models } = await api("/v1/models");
  state.models = models;
  const select = $("#model");
  select.textContent = "";
  models.forEach((m) => {
    const opt = document.createElement("option");
    opt.value = m.name; opt.textContent = `${m.name} (${m.kind})`;
    select.append(opt);
  });
  if (!models.length) { status("no models are served", true); return; }
  await selectModel(models[0].name);
}

document.addEventListener("DOMContentLoaded", init);
