// The Lockstep dashboard: a live view of the integration core and a console for its sandbox.
// Data: the SSE feed /ui/api/stream (trace, event, flow, dlq) plus the core's API (/flows, /dlq, /crosswalk,
// /reconcile) and /ui/api/sandbox for the mocks' clocks, faults and versions.
import { api, clockTime, el, get, post, put } from "./api.js";

const LANES = ["core", "crm", "erp", "billing", "cs"];
const MAX_ROWS = 500;
const DEALS = ["Globex Iberia", "Umbrella Nordics", "Soylent Benelux", "Hooli Austria", "Vandelay Italia",
  "Stark Polska", "Wayne Ireland", "Tyrell France", "Cyberdyne Suisse", "Oscorp Danmark"];

const state = {
  flows: new Map(),      // workflow_id -> flow summary
  dlq: new Map(),        // id -> entry
  selectedFlow: null,
  selectedAccount: null,
  sandbox: null,
  deals: 0,
};

const $ = (id) => document.getElementById(id);

function toast(message, bad = false) {
  const node = $("toast");
  node.textContent = message;
  node.className = `toast show${bad ? " bad" : ""}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.className = "toast"; }, 4000);
}

async function guarded(action, button) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    toast(err.message, true);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

function statusClass(status) {
  const s = String(status || "");
  if (/^(2\d\d|SUCCESS|ok|processed|done|resolved)$/i.test(s)) return "st-ok";
  if (/^(4\d\d|5\d\d|ERROR|error|failed|parked|MAX_RECOVERY_ATTEMPTS_EXCEEDED)$/i.test(s)) return "st-bad";
  if (/^(duplicate|ignored|skipped)$/i.test(s)) return "st-warn";
  return "st-run";
}

// -- timeline -------------------------------------------------------------------------------------------

function renderLanesHead() {
  $("lanes-head").replaceChildren(el("div", {}, "time"),
    ...LANES.map((lane) => el("div", { class: `lane-${lane}` }, lane)));
}

function addRow({ lane, text, status, at, flow, kind, title, inbound }) {
  const cells = LANES.map((name) => name === lane
    ? el("div", { class: `chip ${name}${inbound ? " in" : ""}`, title: title || text },
      text, status ? el("span", { class: `st ${statusClass(status)}` }, status) : null)
    : el("div"));
  const row = el("div", { class: "row fresh", dataset: { kind, lane, flow: flow || "" },
    onclick: () => flow && selectFlow(flow) }, el("div", { class: "time" }, clockTime(at)), ...cells);
  if (kind === "read") row.classList.add("read");
  if (kind === "read" && $("hide-reads").checked) row.hidden = true;
  const timeline = $("timeline");
  timeline.prepend(row);
  while (timeline.childElementCount > MAX_ROWS) timeline.lastElementChild.remove();
}

function onTrace(step) {
  const read = step.action.startsWith("GET ");
  addRow({ lane: LANES.includes(step.system) ? step.system : "core", text: step.action, status: step.status,
    at: step.at, flow: step.flow_id, kind: read ? "read" : "call",
    title: `${step.system} ${step.action} → ${step.status}\nflow ${step.flow_id || "-"}${step.detail ? `\n${step.detail}` : ""}` });
}

function onEvent(event) {
  addRow({ lane: event.system, text: event.type, status: event.status, at: event.at, flow: event.flow_ids[0],
    kind: "event", inbound: true,
    title: `webhook ${event.event_id} from ${event.system}: ${event.type} (${event.status})${event.detail ? `\n${event.detail}` : ""}` });
}

function onFlow(flow) {
  const before = state.flows.get(flow.workflow_id);
  state.flows.set(flow.workflow_id, flow);
  if (!before || before.status !== flow.status) {
    const verb = before ? flow.status : `${flow.status === "SUCCESS" ? "" : "started "}${flow.status}`;
    addRow({ lane: "core", text: `${flow.flow} ${flow.business_key}`, status: verb, at: flow.updated_at,
      flow: flow.workflow_id, kind: "flow", title: `${flow.flow} · ${flow.workflow_id}${flow.error ? `\n${flow.error}` : ""}` });
  }
  scheduleRender();
  if (state.selectedFlow === flow.workflow_id) scheduleFlowDetail();
  // A finished flow may have linked new accounts in the crosswalk.
  if (flow.status === "SUCCESS" && before?.status !== "SUCCESS") scheduleAccounts();
}

function onDlq(entry) {
  state.dlq.set(entry.id, entry);
  if (entry.status === "parked") {
    addRow({ lane: "core", text: `parked ${entry.business_key}`, status: "parked", at: entry.updated_at,
      flow: entry.failed_attempt_id, kind: "dlq", title: `${entry.error_class}: ${entry.error_message}` });
  }
  renderDlq();
}

// -- flows ----------------------------------------------------------------------------------------------

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; renderFlows(); renderCounts(); });
}

function renderCounts() {
  const by = {};
  for (const f of state.flows.values()) by[f.status] = (by[f.status] || 0) + 1;
  const parked = [...state.dlq.values()].filter((e) => e.status === "parked").length;
  const item = (label, n, cls) => el("span", { class: cls }, el("b", {}, n), ` ${label}`);
  $("counts").replaceChildren(
    item("running", (by.PENDING || 0) + (by.ENQUEUED || 0), "st-run"),
    item("succeeded", by.SUCCESS || 0, "st-ok"),
    item("failed", (by.ERROR || 0) + (by.MAX_RECOVERY_ATTEMPTS_EXCEEDED || 0), "st-bad"),
    item("parked in DLQ", parked, parked ? "st-bad" : ""),
  );
}

function renderFlows() {
  const flows = [...state.flows.values()].sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || ""));
  $("flows-count").textContent = `${flows.length} flows`;
  $("flows").replaceChildren(...flows.slice(0, 200).map((f) => el("tr", {
    class: f.workflow_id === state.selectedFlow ? "selected" : null,
    dataset: { flowId: f.workflow_id, status: f.status }, onclick: () => selectFlow(f.workflow_id) },
  el("td", {}, f.flow), el("td", { class: "mono", title: f.workflow_id }, f.workflow_id),
  el("td", {}, el("span", { class: `badge ${f.status}` }, f.status)), el("td", {}, clockTime(f.updated_at)))));
}

let detailTimer = null;
function scheduleFlowDetail() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(renderFlowDetail, 250);
}

async function selectFlow(flowId) {
  state.selectedFlow = flowId;
  renderFlows();
  await renderFlowDetail();
}

async function renderFlowDetail() {
  const flowId = state.selectedFlow;
  if (!flowId) return;
  const box = $("flow-detail");
  let flow;
  try {
    flow = await get(`/flows/${encodeURIComponent(flowId)}`);
  } catch (err) {
    box.className = "detail empty";
    box.textContent = err.message;
    return;
  }
  if (flowId !== state.selectedFlow) return;
  $("flow-title").textContent = flow.workflow_id;
  box.className = "detail";
  box.dataset.flowId = flow.workflow_id;
  box.dataset.status = flow.status;
  box.replaceChildren(
    el("dl", { class: "kv" },
      el("dt", {}, "flow"), el("dd", {}, flow.flow),
      el("dt", {}, "status"), el("dd", {}, el("span", { class: `badge ${flow.status}` }, flow.status)),
      el("dt", {}, "attempts"), el("dd", {}, flow.attempts.map((a) => `${a.attempt}: ${a.status}`).join(" · ")),
      el("dt", {}, "correlation"), el("dd", { class: "mono" },
        el("a", { href: `/trace/${flow.correlation_id}`, target: "_blank" }, flow.correlation_id)),
      flow.error ? [el("dt", {}, "error"), el("dd", { class: "st-bad" }, flow.error)] : null,
      flow.dlq ? [el("dt", {}, "dead letter"), el("dd", {}, `#${flow.dlq.id} ${flow.dlq.status}: ${flow.dlq.reason}`)] : null),
    el("h3", {}, `Steps (${flow.steps.length})`),
    el("ol", {}, flow.steps.map((s) => el("li", { class: s.status },
      `${s.name} `, el("span", { class: statusClass(s.status) }, s.status), s.error ? ` — ${s.error}` : ""))),
    el("h3", {}, `Calls (${flow.trace.length})`),
    el("ol", {}, flow.trace.map((t) => el("li", {},
      el("b", { class: `chip ${t.system}` }, t.system), ` ${t.action} `,
      el("span", { class: statusClass(t.status) }, t.status)))),
  );
}

// -- DLQ ------------------------------------------------------------------------------------------------

function renderDlq() {
  const entries = [...state.dlq.values()].sort((a, b) => b.id - a.id);
  const parked = entries.filter((e) => e.status === "parked").length;
  $("dlq-count").textContent = `${parked} parked · ${entries.length} in all`;
  if (!entries.length) {
    $("dlq").replaceChildren(el("div", { class: "muted" }, "Nothing parked. Toggle a fault, then close a deal."));
    return;
  }
  $("dlq").replaceChildren(...entries.map((e) => el("div", { class: "card", dataset: { dlqId: e.id, status: e.status } },
    el("div", {}, el("span", { class: `badge ${e.status}` }, e.status), ` #${e.id} `, el("b", {}, e.flow), ` ${e.business_key}`),
    el("div", { class: "err" }, `${e.reason}: ${e.error_class}: ${e.error_message}`),
    el("div", { class: "actions" },
      el("button", { class: "replay", disabled: e.status !== "parked",
        onclick: (ev) => replay(e.id, ev.currentTarget) }, "Replay"),
      el("span", { class: "muted" }, `replays: ${e.attempts}${e.last_replay_id ? ` · last ${e.last_replay_id}` : ""}`),
      el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); selectFlow(e.last_replay_id || e.failed_attempt_id); } }, "open")))));
}

async function replay(id, button) {
  const result = await guarded(() => post(`/dlq/${id}/replay`), button);
  if (result) {
    toast(`replaying #${id} as ${result.attempt_id}`);
    onDlq(result.entry);
    selectFlow(result.attempt_id);
  }
}

// -- sandbox --------------------------------------------------------------------------------------------

async function loadSandbox() {
  const view = await guarded(() => get("/ui/api/sandbox"));
  if (!view) return;
  state.sandbox = view;
  $("close-won").disabled = !view.enabled;
  $("sandbox-hint").textContent = view.enabled ? "clocks, faults and API versions of each system" : view.reason;
  $("sandbox").replaceChildren(...Object.entries(view.systems).map(([name, sys]) => systemCard(name, sys, view.presets)));
}

function systemCard(name, sys, presets) {
  if (!sys.reachable) {
    return el("div", { class: `system ${name}`, dataset: { system: name } },
      el("h3", {}, name), el("div", { class: "st-bad" }, sys.error));
  }
  const advance = (by) => el("button", { onclick: (ev) => guarded(async () => {
    const r = await post(`/ui/api/sandbox/${name}/clock/advance`, { by });
    toast(`${name} clock → ${r.iso} (${r.jobs_run} jobs ran)`);
    await loadSandbox();
  }, ev.currentTarget) }, `+${by}`);
  const faults = el("select", { class: "faults", "aria-label": `${name} faults`, onchange: (ev) => guarded(async () => {
    const preset = ev.target.value || null;
    await put(`/ui/api/sandbox/${name}/faults`, { preset });
    toast(preset ? `${name}: ${presets[preset]}` : `${name}: faults cleared`);
    await loadSandbox();
  }) }, el("option", { value: "" }, "no faults"),
  Object.entries(presets).map(([key, label]) => el("option", { value: key, selected: sys.preset === key }, label)),
  sys.faults.length && !sys.preset ? el("option", { value: "custom", selected: true, disabled: true }, `${sys.faults.length} custom rules`) : null);
  const version = el("select", { class: "version", "aria-label": `${name} API version`, onchange: (ev) => guarded(async () => {
    await put(`/ui/api/sandbox/${name}/version`, { api_version: ev.target.value });
    toast(`${name} now serves API version ${ev.target.value} (the core pins ${sys.pinned_version})`);
    await loadSandbox();
  }) }, sys.versions.map((v) => el("option", { value: v, selected: v === sys.api_version }, v)));
  const drift = sys.api_version !== sys.pinned_version;
  return el("div", { class: `system ${name}${sys.faults.length ? " faulty" : ""}`, dataset: { system: name } },
    el("h3", {}, name, el("span", { class: "muted" }, sys.tenant)),
    el("div", { class: "clock" }, "clock ", el("b", { class: "clock-iso" }, sys.clock.iso.replace("T", " ").slice(0, 19)),
      el("span", { class: "muted" }, ` · ${sys.pending_jobs} jobs pending`)),
    el("div", { class: "controls" }, advance("1h"), advance("1d"), advance("30d")),
    el("div", { class: "controls" }, faults, version,
      drift ? el("span", { class: "st-warn", title: "the tenant serves another version than the core's connector pins" }, "drift") : null),
  );
}

async function closeDeal(button) {
  const name = DEALS[state.deals % DEALS.length] + (state.deals >= DEALS.length ? ` ${state.deals}` : "");
  state.deals += 1;
  const result = await guarded(() => post("/ui/api/sandbox/actions/close-won", { account: name }), button);
  if (result) {
    toast(`${name}: opportunity ${result.opportunity} closed won → ${result.business_key}`);
    state.selectedFlow = result.business_key;
    button.dataset.lastFlow = result.business_key;  // what the deal started (tests and curious users)
    $("flow-title").textContent = `${result.business_key} (waiting for the CRM's change event)`;
  }
}

// -- accounts and reconcile -----------------------------------------------------------------------------

let accountsTimer = null;
function scheduleAccounts() {
  clearTimeout(accountsTimer);
  accountsTimer = setTimeout(loadAccounts, 1000);
}

async function loadAccounts() {
  const data = await guarded(() => get("/ui/api/accounts"));
  if (!data) return;
  $("accounts").replaceChildren(...data.accounts.map((a) => el("li", {
    class: a.id === state.selectedAccount ? "selected" : null, dataset: { account: a.id },
    onclick: () => selectAccount(a.id) }, a.id, el("span", { class: "sys" }, Object.keys(a.refs).join(" ")))));
  if (!data.accounts.length) $("accounts").replaceChildren(el("li", { class: "muted" }, "no accounts in the crosswalk yet"));
}

async function selectAccount(id) {
  state.selectedAccount = id;
  for (const li of $("accounts").children) li.classList.toggle("selected", li.dataset.account === id);
  const box = $("account");
  const xw = await guarded(() => get(`/crosswalk/${id}`));
  if (!xw) return;
  box.className = "detail";
  box.replaceChildren(
    el("dl", { class: "kv" }, el("dt", {}, "canonical"), el("dd", { class: "mono" }, xw.id),
      xw.resolved !== xw.id ? [el("dt", {}, "merged into"), el("dd", { class: "mono" }, xw.resolved)] : null,
      Object.entries(xw.refs).map(([sys, native]) => [el("dt", {}, el("span", { class: `chip ${sys}` }, sys)),
        el("dd", { class: "mono" }, native)])),
    ...(xw.history.length ? [el("div", { class: "muted" }, `history: ${xw.history.map((h) => `${h.action} ${h.loser || ""}`).join(", ")}`)] : []),
    el("div", { class: "muted", id: "account-findings" }, "reconciling…"));
  const report = await guarded(() => get(`/reconcile?account=${id}&orphans=false`));
  const target = document.getElementById("account-findings");
  if (!report || !target || state.selectedAccount !== id) return;
  target.className = report.findings.length ? "st-warn" : "st-ok";
  target.textContent = report.findings.length
    ? report.findings.map((f) => `${f.system}: ${f.kind}${f.field ? ` ${f.field}` : ""} (${f.detail || f.actual})`).join("; ")
    : "in lockstep: every system agrees";
}

async function runReconcile(button) {
  const report = await guarded(() => get("/reconcile?limit=500"), button);
  if (!report) return;
  const s = report.summary;
  $("reconcile-summary").textContent = `${s.accounts} accounts · ${s.findings} findings `
    + `(${Object.entries(s.by_kind).map(([k, n]) => `${n} ${k}`).join(", ") || "none"}) · ${s.errors} read errors`;
  const rows = report.findings.map((f) => el("tr", { dataset: { kind: f.kind } },
    el("td", { class: "mono" }, f.account), el("td", {}, f.system), el("td", {}, el("span", { class: "badge" }, f.kind)),
    el("td", {}, f.field || ""), el("td", {}, JSON.stringify(f.expected ?? "")), el("td", {}, JSON.stringify(f.actual ?? "")),
    el("td", {}, f.owner || "")));
  $("findings").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "st-ok" }, "no findings: every system agrees"))]));
}

// -- the feed -------------------------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/ui/api/stream");
  const live = $("live");
  source.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.dataset.state = "down"; live.textContent = "reconnecting…"; });
  const handle = (fn) => (message) => fn(JSON.parse(message.data));
  source.addEventListener("trace", handle(onTrace));
  source.addEventListener("event", handle(onEvent));
  source.addEventListener("flow", handle(onFlow));
  source.addEventListener("dlq", handle(onDlq));
  return source;
}

async function start() {
  renderLanesHead();
  renderDlq();
  renderCounts();
  $("hide-reads").addEventListener("change", (ev) => {
    for (const row of document.querySelectorAll(".row.read")) row.hidden = ev.target.checked;
  });
  $("close-won").addEventListener("click", (ev) => closeDeal(ev.currentTarget));
  $("reconcile-run").addEventListener("click", (ev) => runReconcile(ev.currentTarget));
  $("accounts-refresh").addEventListener("click", loadAccounts);
  window.lockstep = { state, feed: connect() };
  await Promise.all([loadSandbox(), loadAccounts()]);
  // Clocks move when anyone advances them (the demo story, a test): keep the sandbox cards current.
  setInterval(loadSandbox, 5000);
  setInterval(loadAccounts, 15000);
}

start();
export { api };
