// LoPAProxy console: plain ES module, no dependencies, served by the proxy at /console. The key lives in this tab's
// session storage and travels only as a Bearer header to this origin; it never goes into a URL or the page.
const KEY = "lopa.console.key";
const state = { key: sessionStorage.getItem(KEY), role: null, tenant: null, adapters: [], models: [] };
const $ = (id) => document.getElementById(id);

// ---- API ----------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function call(path, { method = "GET", json, form } = {}) {
  const headers = { authorization: `Bearer ${state.key}` };
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) body = form;
  const response = await fetch(path, { method, headers, body });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { body: parsed, headers: response.headers };
}
const api = async (path, options) => (await call(path, options)).body;

// ---- small DOM helpers --------------------------------------------------------------------------------------
function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  return td;
}

function button(label, onClick, plain = true) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (plain) b.className = "plain";
  b.addEventListener("click", onClick);
  return b;
}

function fillTable(table, rows, makeRow) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.append(...makeRow(row));
    return tr;
  }));
}

function fillSelect(select, values) {
  const previous = select.value;
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  if (values.includes(previous)) select.value = previous;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  return n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}
const when = (iso) => new Date(iso).toISOString().replace("T", " ").slice(0, 16);

async function guarded(errorElement, work) {
  errorElement.textContent = "";
  try {
    await work();
  } catch (e) {
    errorElement.textContent = e.message;
  }
}

// ---- sign-in and routing ------------------------------------------------------------------------------------
async function identify() {
  try {
    await api("/admin/tenants");
    return { role: "admin", tenant: null };
  } catch (e) {
    if (e.status !== 401) throw e;
  }
  const limits = await api("/v1/limits");
  return { role: "tenant", tenant: limits.tenant };
}

async function signIn(key) {
  state.key = key;
  try {
    Object.assign(state, await identify());
  } catch (e) {
    state.key = null;
    throw e.status === 401 ? new Error("That key is not accepted.") : e;
  }
  sessionStorage.setItem(KEY, key);
  $("nav").hidden = false;
  for (const a of document.querySelectorAll("nav a")) a.hidden = a.dataset.role !== state.role;
  location.hash = state.role === "admin" ? "#operator" : "#adapters";
  await route();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  Object.assign(state, { key: null, role: null, tenant: null });
  $("nav").hidden = true;
  location.hash = "";
  route();
}

const views = { adapters: showAdapters, try: showTry, "soft-prompt": showSoftPrompt, operator: showOperator };
const roles = { adapters: "tenant", try: "tenant", "soft-prompt": "tenant", operator: "admin" };

async function route() {
  let name = location.hash.slice(1);
  if (!state.role) name = "sign-in";
  else if (roles[name] !== state.role) name = state.role === "admin" ? "operator" : "adapters";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.view === name);
  if (views[name]) await views[name]();
}

// ---- tenant: adapters, upload, usage ------------------------------------------------------------------------
async function loadAdapters() {
  const list = (await api("/v1/adapters")).data;
  const configs = await Promise.all(list.map((a) => api(`/v1/adapters/${encodeURIComponent(a.id)}`)));
  state.adapters = list.map((a, i) => ({ ...a, config: configs[i].config }));
  return state.adapters;
}

async function showAdapters() {
  $("tenant-name").textContent = state.tenant;
  const adapters = await loadAdapters();
  fillTable($("adapters-table"), adapters, (a) => [
    cell(a.name), cell(a.version), cell(a.active ? "active" : ""), cell(a.config.composition),
    cell(a.config.num_virtual_tokens), cell(a.config.rank), cell(a.config.token_dim), cell(a.config.encoder),
    cell(bytes(a.size_bytes)), cell(when(a.created)), actions(a),
  ]);
  const usage = await api("/v1/usage?bucket_width=1d");
  fillTable($("usage-table"), usage.totals, (u) => [
    cell(u.adapter ?? "(none)"), cell(u.requests), cell(u.errors), cell(u.rate_limited), cell(u.prompt_tokens),
    cell(u.completion_tokens), cell(u.requests ? `${(u.latency_ms / u.requests).toFixed(1)} ms` : "–"),
  ]);
  const limits = await api("/v1/limits");
  const l = limits.limits;
  const shown = (n, unit) => (n ? `${n} ${unit}` : `no limit on ${unit}`);
  $("limits-line").textContent = `Limits: ${shown(l.requests_per_minute, "requests/min")}, ` +
    `${shown(l.tokens_per_minute, "tokens/min")}, ${shown(l.concurrent_requests, "concurrent requests")}; ` +
    `${limits.budget.used_tokens} tokens used this ${l.budget_period}` +
    (l.token_budget ? ` of ${l.token_budget}` : "");
}

function actions(adapter) {
  const td = document.createElement("td");
  if (!adapter.active) {
    td.append(button("activate", () => change(() => api(`/v1/adapters/${encodeURIComponent(adapter.name)}/activate`,
      { method: "POST", json: { version: adapter.version } }))));
  }
  td.append(button("delete", () => {
    if (confirm(`Delete ${adapter.id}?`)) {
      change(() => api(`/v1/adapters/${encodeURIComponent(adapter.id)}`, { method: "DELETE" }));
    }
  }));
  return td;
}

async function change(work) {
  await guarded($("upload-error"), async () => {
    await work();
    await showAdapters();
  });
}

async function upload(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  data.append("name", form.name.value);
  data.append("version", form.version.value);
  data.append("activate", form.activate.checked ? "true" : "false");
  for (const file of $("upload-files").files) data.append("file", file, file.name);
  await change(async () => {
    await api("/v1/adapters", { method: "POST", form: data });
    form.reset();
  });
}

// ---- tenant: try it -----------------------------------------------------------------------------------------
async function showTry() {
  const models = (await api("/v1/models")).data;
  state.models = models.map((m) => m.id);
  // Newest adapter first: what a tenant just uploaded is what they want to try.
  const withAdapter = models.filter((m) => m.id.includes(":")).sort((a, b) => b.created - a.created);
  fillSelect($("try-adapter"), withAdapter.map((m) => m.id));
  await loadAdapters();
  showPromptExample();
}

// The active version's prompt_example (the format the adapter was trained on) replaces the prompt, if it has one.
function showPromptExample() {
  const model = $("try-adapter").value;
  const name = model.slice(model.indexOf(":") + 1);
  const adapter = state.adapters.find((a) => a.name === name && a.active);
  const example = adapter?.config.prompt_example;
  if (example) $("try-prompt").value = example;
}

async function send(model, endpoint, prompt, maxTokens) {
  const chat = endpoint === "chat";
  const json = chat
    ? { model, messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, temperature: 0 }
    : { model, prompt, max_tokens: maxTokens, temperature: 0 };
  const started = performance.now();
  const { body, headers } = await call(chat ? "/v1/chat/completions" : "/v1/completions", { method: "POST", json });
  const total = performance.now() - started;
  const text = chat ? body.choices[0].message.content : body.choices[0].text;
  const encoder = headers.get("x-lopa-encoder-ms"), generator = headers.get("x-lopa-generator-ms");
  const parts = [`${total.toFixed(0)} ms in all`, `${body.usage?.prompt_tokens ?? "?"} prompt tokens`];
  if (encoder !== null) parts.push(`encoder ${encoder} ms`, `soft prompt ${generator} ms`,
    `${headers.get("x-lopa-soft-prompt-rows")} rows`);
  return { text, meta: parts.join(" · ") };
}

async function tryIt(event) {
  event.preventDefault();
  const adapted = $("try-adapter").value;
  const base = adapted.slice(0, adapted.indexOf(":"));
  const endpoint = $("try-endpoint").value, prompt = $("try-prompt").value, max = Number($("try-max").value);
  $("try-with-name").textContent = adapted;
  for (const [model, out] of [[base, "try-without"], [adapted, "try-with"]]) {
    $(out).textContent = "…";
    $(`${out}-meta`).textContent = "";
    try {
      const answer = await send(model, endpoint, prompt, max);
      $(out).textContent = answer.text;
      $(`${out}-meta`).textContent = answer.meta;
    } catch (e) {
      $(out).textContent = `error: ${e.message}`;
    }
  }
}

// ---- tenant: see the soft prompt ----------------------------------------------------------------------------
async function showSoftPrompt() {
  const adapters = state.adapters.length ? state.adapters : await loadAdapters();
  fillSelect($("inspect-adapter"), adapters.filter((a) => a.config.composition !== "prompt_tuning").map((a) => a.id));
}

function parseLabelled(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const tab = line.indexOf("\t"), colon = line.indexOf(":");
    const cut = tab >= 0 ? tab : colon;
    return cut > 0 ? { label: line.slice(0, cut).trim(), text: line.slice(cut + 1).trim() } : { label: "", text: line };
  });
}

async function inspect(event) {
  event.preventDefault();
  await guarded($("inspect-error"), async () => {
    const labelled = parseLabelled($("inspect-texts").value);
    const view = await api(`/v1/adapters/${encodeURIComponent($("inspect-adapter").value)}/soft-prompt`, {
      method: "POST", json: { text: $("inspect-text").value, texts: labelled.map((l) => l.text) },
    });
    drawHeatmaps(view);
    drawRowNorms(view.instance);
    drawProjection(view.projection, labelled, view.method);
  });
}

const FOLD = 512; // columns shown per row; wider rows are averaged into this many bins

function fold(row) {
  if (row.length <= FOLD) return row;
  const bins = new Array(FOLD).fill(0), counts = new Array(FOLD).fill(0);
  row.forEach((v, i) => {
    const b = Math.floor((i * FOLD) / row.length);
    bins[b] += v;
    counts[b]++;
  });
  return bins.map((s, i) => s / counts[i]);
}

function heatmap(title, rows, sequential) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  const folded = rows.map(fold);
  const width = folded[0].length;
  const rowHeight = Math.max(1, Math.round(width / 2 / rows.length)); // about twice as wide as tall
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = rows.length * rowHeight;
  canvas.dataset.rows = rows.length;
  canvas.dataset.columns = rows[0].length;
  const values = folded.flat();
  const low = Math.min(...values), high = Math.max(...values);
  const max = Math.max(Math.abs(low), Math.abs(high)) || 1;
  const context = canvas.getContext("2d");
  folded.forEach((row, r) => row.forEach((v, c) => {
    context.fillStyle = sequential ? gray((v - low) / (high - low || 1)) : diverging(v / max);
    context.fillRect(c, r * rowHeight, 1, rowHeight);
  }));
  const summary = rows[0].length > FOLD ? `, d = ${rows[0].length} averaged into ${FOLD} columns` : "";
  caption.textContent = `${title}: ${rows.length} × ${rows[0].length}${summary}` + (sequential
    ? ` (white ${low.toFixed(3)} … dark ${high.toFixed(3)})`
    : ` (blue −${max.toFixed(3)} … red +${max.toFixed(3)})`);
  figure.append(caption, canvas);
  return figure;
}

function diverging(t) {
  const a = Math.round(255 * (1 - Math.min(1, Math.abs(t))));
  return t >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
}

function gray(t) {
  const a = Math.round(255 * (1 - Math.max(0, Math.min(1, t))));
  return `rgb(${a},${a},${a})`;
}

function drawHeatmaps(view) {
  const maps = [];
  if (view.prompt_embeddings) maps.push(heatmap("Z_S", view.prompt_embeddings, false));
  if (view.instance?.gate) maps.push(heatmap("gate σ(u·vᵀ)", view.instance.gate, true));
  if (view.instance) maps.push(heatmap("Z", view.instance.z, false));
  $("heatmaps").replaceChildren(...maps);
}

const SVG = "http://www.w3.org/2000/svg";
function svgElement(name, attributes, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawRowNorms(instance) {
  const svg = $("row-norms");
  svg.replaceChildren();
  if (!instance) return;
  const norms = instance.row_norms, offsets = instance.offset_row_norms ?? [];
  const max = Math.max(...norms, ...offsets) || 1, m = norms.length, slot = 360 / m;
  norms.forEach((n, i) => {
    const h = (n / max) * 160, o = ((offsets[i] ?? 0) / max) * 160;
    svg.append(svgElement("rect", { x: 30 + i * slot, y: 180 - h, width: slot * 0.4, height: h, fill: "#2557d6" }));
    if (offsets.length) {
      svg.append(svgElement("rect", { x: 30 + i * slot + slot * 0.42, y: 180 - o, width: slot * 0.4, height: o,
        fill: "#e07b00" }));
    }
    svg.append(svgElement("text", { x: 30 + i * slot, y: 195, "font-size": 10 }, String(i)));
  });
  svg.append(svgElement("text", { x: 30, y: 12, "font-size": 11 }, `max ${max.toFixed(3)}; blue ‖Z_i‖` +
    (offsets.length ? ", orange offset" : "")));
}

const PALETTE = ["#2557d6", "#d62839", "#1b998b", "#e07b00", "#7b2cbf", "#5c6577", "#c9184a", "#2b9348"];

function drawProjection(projection, labelled, method) {
  const svg = $("projection");
  svg.replaceChildren();
  if (!projection) {
    $("projection-caption").textContent = "PCA of Z: paste two or more texts";
    return;
  }
  const xs = projection.x, ys = projection.y;
  const span = (v) => [Math.min(...v), Math.max(...v)];
  const [x0, x1] = span(xs), [y0, y1] = span(ys);
  const sx = (x) => 30 + ((x - x0) / (x1 - x0 || 1)) * 340, sy = (y) => 270 - ((y - y0) / (y1 - y0 || 1)) * 240;
  const labels = [...new Set(labelled.map((l) => l.label))];
  xs.forEach((x, i) => {
    const colour = PALETTE[labels.indexOf(labelled[i].label) % PALETTE.length];
    const dot = svgElement("circle", { cx: sx(x), cy: sy(ys[i]), r: 5, fill: colour, "data-label": labelled[i].label });
    dot.append(svgElement("title", {}, `${labelled[i].label}: ${labelled[i].text}`));
    svg.append(dot);
  });
  labels.forEach((label, k) => svg.append(svgElement("text", { x: 32, y: 14 + k * 13, "font-size": 11,
    fill: PALETTE[k % PALETTE.length] }, label || "(no label)")));
  svg.append(svgElement("text", { x: 370, y: 292, "text-anchor": "end", "font-size": 11, class: "axis" },
    "PC1 →"));
  svg.append(svgElement("text", { x: 12, y: 270, transform: "rotate(-90 12 270)", "font-size": 11, class: "axis" },
    "PC2 →"));
  const [e1, e2] = projection.explained.map((e) => (100 * e).toFixed(1));
  $("projection-caption").textContent = `PCA of ${method} Z for ${xs.length} texts, coloured by label ` +
    `(PC1 ${e1} %, PC2 ${e2} % of the variance)`;
}

// ---- operator -----------------------------------------------------------------------------------------------
async function showOperator() {
  const tenants = (await api("/admin/tenants")).data;
  fillTable($("tenants-table"), tenants, (t) => [
    cell(t.name), cell(t.disabled ? "disabled" : "enabled"), cell(when(t.created)),
    wrap(button(t.disabled ? "enable" : "disable", () => operate($("tenant-error"),
      () => api(`/admin/tenants/${encodeURIComponent(t.name)}/${t.disabled ? "enable" : "disable"}`,
        { method: "POST" })))),
    cell(""),
  ]);
  fillSelect($("keys-tenant"), tenants.map((t) => t.name));
  await showKeys();
  await showTenantLimits(tenants);
  const usage = await api("/admin/usage?bucket_width=1d");
  fillTable($("operator-usage-table"), usage.totals, (u) => [
    cell(u.tenant), cell(u.adapter ?? "(none)"), cell(u.requests), cell(u.errors), cell(u.rate_limited),
    cell(u.prompt_tokens), cell(u.completion_tokens),
    cell(u.requests ? `${(u.latency_ms / u.requests).toFixed(1)} ms` : "–"),
  ]);
  const status = await api("/admin/status");
  fillTable($("backends-table"), Object.entries(status.backends), ([name, ready]) => [
    cell(name), cell(ready ? "ready" : "not ready"),
  ]);
  fillTable($("encoders-table"), status.encoders, (e) => [
    cell(e.name), cell(e.device), cell(e.batches), cell(e.instances),
    cell(e.batches ? (e.instances / e.batches).toFixed(2) : "–"),
  ]);
}

/** Each tenant's limits in effect, in the last column of the tenants table. */
async function showTenantLimits(tenants) {
  const rows = [...document.querySelectorAll("#tenants-table tbody tr")];
  await Promise.all(tenants.map(async (t, i) => {
    const l = (await api(`/admin/tenants/${encodeURIComponent(t.name)}/limits`)).limits;
    const shown = (n, unit) => (n ? `${n} ${unit}` : `no ${unit} limit`);
    rows[i].cells[4].textContent = `${shown(l.requests_per_minute, "req/min")}, ` +
      `${shown(l.tokens_per_minute, "tokens/min")}, ${shown(l.concurrent_requests, "concurrent")}`;
  }));
}

function wrap(element) {
  const td = document.createElement("td");
  td.append(element);
  return td;
}

async function operate(errorElement, work) {
  await guarded(errorElement, async () => {
    await work();
    await showOperator();
  });
}

async function showKeys() {
  const tenant = $("keys-tenant").value;
  if (!tenant) return;
  const keys = (await api(`/admin/tenants/${encodeURIComponent(tenant)}/keys`)).data;
  // An earlier refresh may answer after the operator picked another tenant: never show its keys over the new ones.
  if ($("keys-tenant").value !== tenant) return;
  fillTable($("keys-table"), keys, (k) => [
    cell(k.id), cell(when(k.created)), cell(k.revoked ? "revoked" : "active"),
    wrap(k.revoked ? document.createTextNode("") : button("revoke", () => operate($("tenant-error"),
      () => api(`/admin/tenants/${encodeURIComponent(tenant)}/keys/${encodeURIComponent(k.id)}`,
        { method: "DELETE" })))),
  ]);
}

async function issueKey() {
  await guarded($("tenant-error"), async () => {
    const tenant = $("keys-tenant").value;
    const issued = await api(`/admin/tenants/${encodeURIComponent(tenant)}/keys`, { method: "POST" });
    $("key-value").textContent = issued.key;
    $("key-issued").hidden = false;
    await showKeys();
  });
}

async function createTenant(event) {
  event.preventDefault();
  const name = $("tenant-new").value;
  await operate($("tenant-error"), () => api("/admin/tenants", { method: "POST", json: { name } }));
}

// ---- wiring -------------------------------------------------------------------------------------------------
$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded($("sign-in-error"), () => signIn($("key").value.trim()));
});
$("sign-out").addEventListener("click", signOut);
$("upload-form").addEventListener("submit", upload);
$("try-form").addEventListener("submit", tryIt);
$("try-adapter").addEventListener("change", showPromptExample);
$("inspect-form").addEventListener("submit", inspect);
$("tenant-form").addEventListener("submit", createTenant);
$("keys-tenant").addEventListener("change", () => guarded($("tenant-error"), showKeys));
$("key-issue").addEventListener("click", issueKey);
window.addEventListener("hashchange", () => route());
if (state.key) signIn(state.key).catch(() => signOut());
else route();
