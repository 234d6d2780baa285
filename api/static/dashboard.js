// OpenVPP operator dashboard: reads the JSON API with the viewer's key.
// The key stays in this browser (localStorage) and goes out only as a Bearer header.
"use strict";

(() => {
  const KEY_STORE = "openvpp.apiKey";
  const FINAL = new Set(["delivered", "settled", "cancelled", "failed"]);
  const TICK_MS = 3000;
  const SLOW_TICKS = 5; // the fleet and the lists refresh every SLOW_TICKS ticks

  // refused: the key was refused (401); refreshing stops until another key is given.
  const state = { selected: null, detail: null, ticks: 0, busy: false, refused: false };
  const charts = {};
  window.dashboard = { state, charts }; // for the console and the browser tests

  const $ = (selector) => document.querySelector(selector);
  const message = (name) => document.querySelector(`.message[data-for="${name}"]`);

  class ApiError extends Error {
    constructor(status, detail) {
      super(describe(status, detail));
      this.status = status;
      this.detail = detail;
    }
  }

  function describe(status, detail) {
    if (Array.isArray(detail)) {
      return detail.map((d) => `${fieldOf(d) || "request"}: ${messageOf(d)}`).join("; ");
    }
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    return `${status}: ${text}`;
  }

  // The form field a FastAPI error item points at: its location ("body.kw" -> "kw"),
  // or for a check across fields, the field its message starts with ("end: ...").
  function fieldOf(item) {
    const loc = (item.loc || []).filter((part) => part !== "body");
    if (loc.length) return String(loc[0]);
    const named = /^(?:Value error, )?([a-z_]+): /.exec(item.msg || "");
    return named ? named[1] : "";
  }

  // The message without the prefix that names its field.
  function messageOf(item) {
    return String(item.msg || "").replace(/^(?:Value error, )?[a-z_]+: /, "");
  }

  async function api(path, options = {}) {
    const key = localStorage.getItem(KEY_STORE);
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (key) headers.Authorization = `Bearer ${key}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, body && body.detail !== undefined ? body.detail : body);
      if (response.status === 401) {
        state.refused = true;
        showAuth(`Key refused (401): ${error.detail}`, true);
      }
      throw error;
    }
    return body;
  }

  function showAuth(text, bad) {
    const status = $("#auth-status");
    status.textContent = text;
    status.classList.toggle("bad", Boolean(bad));
  }

  // Run a section's loader; an error shows in the section instead of the whole page.
  async function section(name, load) {
    const box = message(name);
    if (box) {
      box.textContent = "";
      box.classList.remove("bad");
    }
    try {
      await load();
    } catch (error) {
      if (!box) throw error;
      box.textContent =
        error.status === 403 ? `Not allowed for this key (403): ${error.detail}` : error.message;
      box.classList.add("bad");
    }
  }

  // ------------------------------------------------------------------ formatting

  const kw = (value) => (value === null || value === undefined ? "–" : Number(value).toFixed(1));
  const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const time = (iso) => (iso ? stamp.format(new Date(iso)) : "–");
  const span = (start, end) => {
    const [a, b] = [new Date(start), new Date(end)];
    const sameDay = a.toDateString() === b.toDateString();
    return `${stamp.format(a)} – ${sameDay ? clock.format(b) : stamp.format(b)}`;
  };
  const short = (id) => (id && id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id || "–");

  function cell(row, text, numeric) {
    const td = row.insertCell();
    td.textContent = text;
    if (numeric) td.className = "num";
    return td;
  }

  function fillTable(table, rows, render) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const item of rows) render(body.insertRow(), item);
  }

  // ------------------------------------------------------------------ charts

  // Power and money read against zero.
  const zeroBased = (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.05 : 1];

  function draw(name, container, series, data, extra = {}) {
    const width = Math.max(320, container.clientWidth || 640);
    const existing = charts[name];
    if (existing && existing.series.length === series.length + 1) {
      existing.setData(data);
      return existing;
    }
    if (existing) existing.destroy();
    container.replaceChildren();
    const options = {
      width,
      height: 260,
      scales: {
        x: { time: extra.time !== false, ...(extra.xRange ? { range: extra.xRange } : {}) },
        y: { range: zeroBased },
      },
      series: [{ label: extra.xLabel || "time" }, ...series],
      axes: extra.axes || [extra.xAxis || {}, { label: extra.yLabel || "kW" }],
      ...extra.options,
    };
    charts[name] = new uPlot(options, data, container);
    return charts[name];
  }

  function clearChart(name, container) {
    if (charts[name]) charts[name].destroy();
    delete charts[name];
    container.replaceChildren();
  }

  window.addEventListener("resize", () => {
    for (const chart of Object.values(charts)) {
      const width = chart.root.parentElement.clientWidth;
      if (width) chart.setSize({ width: Math.max(320, width), height: 260 });
    }
  });

  const steps = () => uPlot.paths.stepped({ align: 1 });
  const seconds = (iso) => Date.parse(iso) / 1000;

  // ------------------------------------------------------------------ fleet

  async function loadFleet() {
    const rows = await api("v1/grid/capacity?group_by=region&group_by=feeder&group_by=device_type");
    const order = (r) => [r.region, r.feeder, r.device_type].map((v) => v || "").join("\u0000");
    rows.sort((a, b) => order(a).localeCompare(order(b)));
    fillTable($("#fleet-table"), rows, (row, r) => {
      cell(row, r.region || "–");
      cell(row, r.feeder || "–");
      cell(row, r.device_type || "–");
      cell(row, String(r.devices), true);
      cell(row, kw(r.flex_kw), true);
      cell(row, kw(r.enrolled_flex_kw), true);
      cell(row, kw(r.online_flex_kw), true);
      cell(row, String(r.available_devices), true);
      cell(row, kw(r.available_flex_kw), true);
    });
    // A request names one feeder or one region.
    const select = $("#req-area");
    const chosen = select.value;
    const group = (label, kind, names) => {
      const optgroup = document.createElement("optgroup");
      optgroup.label = label;
      optgroup.append(...names.map((name) => new Option(name, `${kind}:${name}`)));
      return optgroup;
    };
    const distinct = (name) => [...new Set(rows.map((r) => r[name]).filter(Boolean))].sort();
    select.replaceChildren(
      group("Feeder", "feeder", distinct("feeder")),
      group("Region", "region", distinct("region")),
    );
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  // ------------------------------------------------------------------ capacity requests

  async function loadRequests() {
    const rows = await api("v1/capacity-requests");
    fillTable($("#request-table"), rows, (row, r) => {
      row.dataset.id = r.id;
      row.classList.toggle("selected", r.id === state.selected);
      row.addEventListener("click", () => select(r.id));
      const link = cell(row, short(r.id));
      link.title = r.id;
      link.className = "link";
      cell(row, r.feeder || r.region || "–");
      cell(row, span(r.start, r.end));
      cell(row, r.kw !== null ? kw(r.kw) : `cap ${kw(r.cap_kw)}`, true);
      const status = cell(row, r.status);
      status.className = `status ${r.status}`;
      cell(row, r.devices_called === null || r.devices_called === undefined ? "–" : String(r.devices_called), true);
      cell(row, kw(r.shortfall_kwh), true);
    });
  }

  async function select(id) {
    state.selected = id;
    state.detail = null;
    for (const row of $("#request-table").tBodies[0].rows) {
      row.classList.toggle("selected", row.dataset.id === id);
    }
    $("#request-detail").hidden = false;
    clearChart("request", $("#request-chart"));
    await refreshDetail();
  }

  async function refreshDetail() {
    if (!state.selected) return;
    await section("detail", loadDetail);
    await section("events", loadEvents);
  }

  async function loadDetail() {
    const id = state.selected;
    const r = await api(`v1/capacity-requests/${encodeURIComponent(id)}`);
    if (id !== state.selected) return;
    state.detail = r;
    $("#detail-id").textContent = r.id;
    const job = r.job || {};
    const parts = [`Status: ${r.status}`];
    // A settlement job is shown while it runs, and when it failed (its error says why).
    const settling = job.kind === "settlement" && job.status !== "done";
    if ((r.status === "planning" || settling) && job.status) {
      const what = settling ? "settlement job" : "job";
      parts.push(`${what} ${job.status} ${Math.round((job.progress || 0) * 100)}%${job.message ? ` (${job.message})` : ""}`);
      if (settling && job.error) parts.push(job.error);
    }
    if (r.reason) parts.push(r.reason);
    if (r.plan && r.plan.devices_called !== undefined) parts.push(`${r.plan.devices_called} devices called`);
    if (!r.reason && r.plan && r.plan.shortfall_kwh) parts.push(`shortfall ${kw(r.plan.shortfall_kwh)} kWh`);
    if (r.settlement_epoch !== null && r.settlement_epoch !== undefined) parts.push(`settled in epoch ${r.settlement_epoch}`);
    $("#detail-status").textContent = parts.join(" · ");
    $("#detail-status").dataset.status = r.status;
    const approved = r.auto_dispatch || (r.history || []).some((h) => h.action === "approved");
    $("#approve-request").hidden = r.status !== "planned" || approved;
    $("#cancel-request").hidden = FINAL.has(r.status);

    const intervals = r.intervals || [];
    const chart = $("#request-chart");
    if (!intervals.length) {
      clearChart("request", chart);
      chart.textContent = r.status === "planning" ? "Planning…" : "No intervals.";
    } else {
      // Steps hold each interval's value until the next start; a last point at the
      // window's end closes the last step.
      const pick = (name) => {
        const values = intervals.map((i) => (i[name] === undefined ? null : i[name]));
        return [...values, values[values.length - 1]];
      };
      const value = (u, v) => kw(v);
      draw(
        "request",
        chart,
        [
          { label: "requested kW", value, stroke: "#6b7280", dash: [6, 4], width: 2, paths: steps() },
          { label: "planned kW", value, stroke: "#2563eb", width: 2, paths: steps() },
          { label: "committed kW", value, stroke: "#d97706", dash: [3, 3], width: 2, paths: steps() },
          { label: "delivered kW", value, stroke: "#059669", width: 2, paths: steps() },
        ],
        [
          [...intervals.map((i) => seconds(i.start)), seconds(r.end)],
          pick("requested_kw"),
          pick("planned_kw"),
          pick("committed_kw"),
          pick("delivered_kw"),
        ],
        { xLabel: "interval start" },
      );
    }
    fillTable($("#interval-table"), intervals, (row, i) => {
      cell(row, time(i.start));
      cell(row, kw(i.requested_kw), true);
      cell(row, kw(i.planned_kw), true);
      cell(row, kw(i.committed_kw), true);
      cell(row, kw(i.delivered_kw), true);
      cell(row, kw(i.shortfall_kw), true);
    });
    // One line per interval that falls short: by how much, and every reason given.
    const reasons = $("#shortfall-reasons");
    reasons.replaceChildren();
    for (const i of intervals) {
      if (!(i.reasons || []).length) continue;
      const li = document.createElement("li");
      const head = document.createElement("strong");
      head.textContent = `${clock.format(new Date(i.start))} short ${kw(i.shortfall_kw)} kW: `;
      li.append(head, i.reasons.join("; "));
      reasons.append(li);
    }
    if (!reasons.children.length) {
      const li = document.createElement("li");
      li.textContent = intervals.length ? "none: the plan meets every interval" : "–";
      reasons.append(li);
    }
  }

  async function loadEvents() {
    const id = state.selected;
    const events = await api(`v1/events?capacity_request_id=${encodeURIComponent(id)}`);
    if (id !== state.selected) return;
    events.sort((a, b) => a.ven_id.localeCompare(b.ven_id) || a.created_at.localeCompare(b.created_at));
    const counts = {};
    for (const e of events) counts[e.status] = (counts[e.status] || 0) + 1;
    const vens = new Set(events.map((e) => e.ven_id)).size;
    $("#event-summary").textContent = events.length
      ? `${events.length} events to ${vens} VENs: ` +
        Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(", ")
      : "No events sent for this request.";
    fillTable($("#event-table"), events, (row, e) => {
      cell(row, e.ven_id);
      cell(row, short(e.device_id)).title = e.device_id;
      cell(row, short(e.event_id)).title = e.event_id;
      cell(row, e.status).className = `status ${e.status}`;
      cell(row, time(e.updated_at));
    });
  }

  async function act(action) {
    if (!state.selected) return;
    await section("detail", async () => {
      await api(`v1/capacity-requests/${encodeURIComponent(state.selected)}/${action}`, { method: "POST" });
      await loadDetail();
    });
    await section("requests", loadRequests);
  }

  // ------------------------------------------------------------------ request form

  function localInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function defaultWindow() {
    const quarter = 15 * 60 * 1000;
    const start = new Date(Math.ceil((Date.now() + quarter) / quarter) * quarter);
    $("#req-start").value = localInput(start);
    $("#req-end").value = localInput(new Date(start.getTime() + 4 * quarter));
  }

  // A value the browser cannot read goes to the service as typed, so that its 422 names it.
  const isoOrRaw = (value) => {
    const date = new Date(value);
    return value && !Number.isNaN(date.getTime()) ? date.toISOString() : value || null;
  };
  const numberOrRaw = (value) => {
    const text = value.trim();
    if (!text) return null;
    return Number.isFinite(Number(text)) ? Number(text) : text;
  };

  async function submitRequest(event) {
    event.preventDefault();
    const form = $("#request-form");
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    $("#request-form-error").textContent = "";
    const [kind, area] = $("#req-area").value.split(/:(.*)/s);
    const body = {
      feeder: kind === "feeder" ? area : null,
      region: kind === "region" ? area : null,
      start: isoOrRaw($("#req-start").value),
      end: isoOrRaw($("#req-end").value),
      kw: numberOrRaw($("#req-kw").value),
      cap_kw: null,
      auto_dispatch: $("#req-auto").checked,
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await api("v1/capacity-requests", { method: "POST", body });
      await section("requests", loadRequests);
      await select(created.id);
    } catch (error) {
      showFormError(error);
    } finally {
      button.disabled = false;
    }
  }

  function showFormError(error) {
    const general = [];
    if (Array.isArray(error.detail)) {
      for (const item of error.detail) {
        const field = fieldOf(item);
        const span = field && document.querySelector(`#request-form .field-error[data-field~="${field}"]`);
        const text = `${field || "request"}: ${messageOf(item)}`;
        if (span) span.textContent = span.textContent ? `${span.textContent}; ${text}` : text;
        else general.push(text);
      }
    } else if (error.status === 403) {
      general.push(`Not allowed for this key (403): ${error.detail}`);
    } else {
      general.push(error.message);
    }
    $("#request-form-error").textContent = general.join("; ");
  }

  // ------------------------------------------------------------------ schedules

  const area = (s) => s.feeder || s.region || s.program_id || "every enrolled device";

  async function loadSchedules() {
    const box = message("schedules");
    const select = $("#schedule-select");
    let schedules = [];
    try {
      schedules = (await api("v1/schedules")) || [];
    } catch (error) {
      if (error.status !== 404) throw error; // a service without schedules says 404
    }
    const picker = $("#schedule-picker");
    if (!Array.isArray(schedules) || !schedules.length) {
      select.replaceChildren();
      picker.hidden = true;
      $("#schedule-summary").textContent = "";
      clearChart("schedule", $("#schedule-chart"));
      box.textContent = "No schedules.";
      return;
    }
    const chosen = select.value;
    picker.hidden = false;
    select.replaceChildren(
      ...schedules.map((s) => new Option(`${s.date} · ${area(s)} · ${s.status}`, s.id)),
    );
    select.value = schedules.some((s) => s.id === chosen) ? chosen : schedules[0].id;
    await loadSchedule(select.value);
  }

  async function loadSchedule(id) {
    const schedule = await api(`v1/schedules/${encodeURIComponent(id)}`);
    const parts = [`${schedule.date} · ${area(schedule)}`, `Status: ${schedule.status}`];
    if (schedule.reason) parts.push(schedule.reason);
    if (schedule.devices !== null && schedule.devices !== undefined) parts.push(`${schedule.devices} devices`);
    if (schedule.energy_cost !== undefined && schedule.baseline_energy_cost !== undefined) {
      parts.push(
        `energy cost ${Number(schedule.energy_cost).toFixed(2)} ` +
        `(left alone ${Number(schedule.baseline_energy_cost).toFixed(2)})`,
      );
    }
    $("#schedule-summary").textContent = parts.join(" · ");
    const aggregate = schedule.aggregate || [];
    const chart = $("#schedule-chart");
    if (!aggregate.length) {
      clearChart("schedule", chart);
      chart.textContent = "No result yet.";
      return;
    }
    // As for requests: steps closed by a point at the end of the last interval.
    const last = aggregate[aggregate.length - 1];
    const closed = (name) => [...aggregate.map((a) => a[name] ?? null), last[name] ?? null];
    const money = (u, v) => (v === null ? "–" : v.toFixed(4));
    draw(
      "schedule",
      chart,
      [
        { label: "baseline kW", value: (u, v) => kw(v), stroke: "#6b7280", dash: [6, 4], width: 2, paths: steps() },
        { label: "scheduled kW", value: (u, v) => kw(v), stroke: "#2563eb", width: 2, paths: steps() },
        { label: "import price per kWh", value: money, scale: "price", stroke: "#dc2626", width: 1, paths: steps() },
      ],
      [
        [...aggregate.map((a) => seconds(a.start)), seconds(last.start) + (schedule.resolution_s || 900)],
        closed("baseline_kw"),
        closed("p_kw"),
        closed("import_price_per_kwh"),
      ],
      { axes: [{}, { label: "kW" }, { scale: "price", side: 1, label: "price per kWh", grid: { show: false } }] },
    );
  }

  // ------------------------------------------------------------------ rewards

  async function loadSettlements() {
    const rows = await api("v1/settlements");
    fillTable($("#settlement-table"), rows, (row, s) => {
      cell(row, String(s.epoch), true);
      cell(row, s.program_id || "–");
      cell(row, s.status).className = `status ${s.status}`;
      cell(row, String(s.rewards), true);
      cell(row, Number(s.total_ovpp).toFixed(3), true);
      cell(row, time(s.confirmed_at));
    });
    const chart = $("#rewards-chart");
    if (!rows.length) {
      clearChart("rewards", chart);
      chart.textContent = "No settlements yet.";
      return;
    }
    const ordered = [...rows].sort((a, b) => a.epoch - b.epoch);
    draw(
      "rewards",
      chart,
      [
        {
          label: "rewards OVPP",
          value: (u, v) => (v === null ? "–" : v.toFixed(3)),
          points: { show: false },
          stroke: "#7c3aed",
          fill: "rgba(124,58,237,0.3)",
          paths: uPlot.paths.bars({ size: [0.6, 60] }),
        },
      ],
      [ordered.map((s) => s.epoch), ordered.map((s) => s.total_ovpp)],
      {
        time: false,
        xLabel: "epoch",
        yLabel: "OVPP",
        // One epoch of room on each side, from the data the chart holds now.
        xRange: (u) => [u.data[0][0] - 1, u.data[0][u.data[0].length - 1] + 1],
        xAxis: { label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
      },
    );
  }

  async function loadDeviceRewards(event) {
    event.preventDefault();
    const device = $("#reward-device").value.trim();
    if (!device) return;
    await section("device-rewards", async () => {
      const rows = await api(`v1/devices/${encodeURIComponent(device)}/rewards`);
      fillTable($("#device-reward-table"), rows, (row, r) => {
        cell(row, String(r.epoch), true);
        cell(row, Number(r.amount_ovpp).toFixed(3), true);
        cell(row, Number(r.delivered_kwh).toFixed(2), true);
        cell(row, Number(r.availability).toFixed(2), true);
        cell(row, r.epoch_status);
        cell(row, r.claimed ? "yes" : "no");
      });
      if (!rows.length) message("device-rewards").textContent = "No rewards for this device yet.";
    });
  }

  // ------------------------------------------------------------------ wiring

  async function loadAll() {
    if (!localStorage.getItem(KEY_STORE)) {
      showAuth("Enter an API key to see the fleet (operator, aggregator, integrator or analyst).", true);
      return;
    }
    state.refused = false;
    showAuth("Key in use (kept in this browser).", false);
    await section("fleet", loadFleet);
    await section("requests", loadRequests);
    await section("schedules", loadSchedules);
    await section("rewards", loadSettlements);
    if (state.selected) await refreshDetail();
  }

  async function tick() {
    if (state.busy || state.refused || !localStorage.getItem(KEY_STORE)) return;
    state.busy = true;
    try {
      state.ticks += 1;
      if (state.ticks % SLOW_TICKS === 0) {
        await loadAll();
      } else if (state.selected && !(state.detail && FINAL.has(state.detail.status))) {
        await refreshDetail();
        await section("requests", loadRequests);
      }
    } finally {
      state.busy = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#api-key").value = localStorage.getItem(KEY_STORE) || "";
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#api-key").value.trim();
      if (key) localStorage.setItem(KEY_STORE, key);
      else localStorage.removeItem(KEY_STORE);
      loadAll();
    });
    $("#forget-key").addEventListener("click", () => {
      localStorage.removeItem(KEY_STORE);
      $("#api-key").value = "";
      showAuth("Key forgotten.", true);
    });
    $("#request-form").addEventListener("submit", submitRequest);
    $("#approve-request").addEventListener("click", () => act("approve"));
    $("#cancel-request").addEventListener("click", () => act("cancel"));
    $("#schedule-select").addEventListener("change", (event) =>
      section("schedules", () => loadSchedule(event.target.value)));
    $("#device-rewards-form").addEventListener("submit", loadDeviceRewards);
    defaultWindow();
    loadAll();
    setInterval(tick, TICK_MS);
  });
})();
