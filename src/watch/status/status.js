// The status page of `rigger watch --listen` (served from the binary).
// Everything shown comes from /api/... and is put on the page as text
// (textContent, attribute values), never as markup: host names, labels and
// annotations come from managed hosts. The token lives in this tab's
// sessionStorage and goes out only in the Authorization header of our own
// requests (no cookie), so another site cannot make the browser send it.
"use strict";

(function () {
  const TOKEN_KEY = "rigger-watch-token";
  const REFRESH_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let chartHost = null;
  // Whether rigger watch takes changes from this page (a write token is
  // configured): from /api/silences.
  let writable = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function badge(text, cls) {
    return el("span", text, "badge " + cls);
  }

  function message(text) {
    $("message").textContent = text || "";
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }

  class HttpError extends Error {
    constructor(status, text) {
      super(text);
      this.status = status;
    }
  }

  async function api(path, options) {
    const opts = Object.assign({ cache: "no-store", credentials: "omit" }, options || {});
    opts.headers = headers(opts.headers);
    const r = await fetch(path, opts);
    const text = await r.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = { error: text.trim() };
    }
    if (!r.ok) throw new HttpError(r.status, (body && body.error) || r.statusText);
    return body;
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (!isFinite(t) || t <= 0) return "never";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }

  function timeCell(iso) {
    const td = el("td", ago(iso));
    td.title = iso || "";
    return td;
  }

  function labelsCell(labels, skip) {
    const td = el("td");
    for (const [k, v] of Object.entries(labels || {})) {
      if (skip && skip.includes(k)) continue;
      td.appendChild(el("span", k + "=" + v, "label"));
    }
    return td;
  }

  function fill(table, rows, columns, emptyText) {
    const body = $(table).tBodies[0];
    if (rows.length === 0) {
      const td = el("td", emptyText, "empty");
      td.colSpan = columns;
      const tr = el("tr");
      tr.appendChild(td);
      body.replaceChildren(tr);
    } else {
      body.replaceChildren(...rows);
    }
  }

  function renderHosts(data) {
    const hosts = data.hosts || [];
    const rows = hosts.map((h) => {
      const tr = el("tr");
      tr.dataset.host = h.name;
      tr.dataset.up = h.up ? "yes" : "no";
      tr.appendChild(el("td", h.name));
      const st = el("td");
      st.appendChild(h.up ? badge("up", "up") : badge("down", "down"));
      tr.appendChild(st);
      tr.appendChild(timeCell(h.lastSeen));
      tr.appendChild(el("td", h.error || ""));
      return tr;
    });
    fill("hosts", rows, 4, "no hosts watched");
    const select = $("chart-host");
    const names = hosts.map((h) => h.name);
    if (chartHost === null || !names.includes(chartHost)) chartHost = names.length ? names[0] : null;
    const current = Array.from(select.options).map((o) => o.value);
    if (current.join("\n") !== names.join("\n")) {
      select.replaceChildren(
        ...names.map((n) => {
          const o = el("option", n);
          o.value = n;
          return o;
        })
      );
    }
    if (chartHost !== null) select.value = chartHost;
  }

  function silenceFrom(a) {
    const m = [];
    for (const k of ["alertname", "host"]) if (a.labels && a.labels[k] !== undefined) m.push(k + "=" + a.labels[k]);
    $("silence-matchers").value = m.join(", ");
    $("silence-comment").focus();
  }

  function renderAlerts(list) {
    const order = { firing: 0, pending: 1, resolved: 2 };
    list.sort((a, b) => order[a.state] - order[b.state] || String(a.activeSince).localeCompare(String(b.activeSince)));
    const active = list.filter((a) => a.state !== "resolved").map((a) => {
      const tr = el("tr");
      tr.dataset.fingerprint = a.fingerprint;
      tr.dataset.alertname = (a.labels && a.labels.alertname) || "";
      tr.dataset.state = a.state;
      tr.dataset.silenced = a.suppressed ? "yes" : "no";
      const st = el("td");
      st.appendChild(badge(a.state, a.state));
      tr.appendChild(st);
      tr.appendChild(el("td", (a.labels && a.labels.alertname) || ""));
      tr.appendChild(labelsCell(a.labels, ["alertname"]));
      tr.appendChild(el("td", (a.annotations && a.annotations.summary) || ""));
      tr.appendChild(timeCell(a.activeSince));
      const sup = el("td");
      sup.appendChild(a.suppressed ? badge(a.suppressed, "silenced") : el("span", "no"));
      tr.appendChild(sup);
      const act = el("td");
      const b = el("button", "Silence…");
      b.type = "button";
      b.addEventListener("click", () => silenceFrom(a));
      act.appendChild(b);
      tr.appendChild(act);
      return tr;
    });
    fill("alerts", active, 7, "no active alerts");
    const recent = list.filter((a) => a.state === "resolved").map((a) => {
      const tr = el("tr");
      tr.dataset.fingerprint = a.fingerprint;
      tr.appendChild(el("td", (a.labels && a.labels.alertname) || ""));
      tr.appendChild(labelsCell(a.labels, ["alertname"]));
      tr.appendChild(el("td", (a.annotations && a.annotations.summary) || ""));
      tr.appendChild(timeCell(a.activeSince));
      tr.appendChild(timeCell(a.resolvedAt));
      return tr;
    });
    fill("recent", recent, 5, "none");
  }

  async function expire(id) {
    try {
      await api("/api/silences/" + encodeURIComponent(id) + "/expire", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      result("silence " + id + " expired", false);
    } catch (e) {
      result(writeError(e), true);
    }
    refresh();
  }

  function renderSilences(data) {
    const rows = (data.silences || []).map((s) => {
      const tr = el("tr");
      tr.dataset.silence = String(s.id);
      tr.dataset.status = s.status;
      tr.appendChild(el("td", s.id));
      const st = el("td");
      st.appendChild(badge(s.status, s.status === "active" ? "active-silence" : "expired"));
      tr.appendChild(st);
      const m = el("td");
      for (const x of s.matchers || []) m.appendChild(el("span", x, "label"));
      tr.appendChild(m);
      const until = el("td", s.endsAt);
      tr.appendChild(until);
      tr.appendChild(el("td", s.comment));
      tr.appendChild(el("td", s.createdBy));
      const act = el("td");
      if (s.status === "active") {
        const b = el("button", "Expire");
        b.type = "button";
        b.className = "expire";
        b.addEventListener("click", () => expire(s.id));
        act.appendChild(b);
      }
      tr.appendChild(act);
      return tr;
    });
    fill("silences", rows, 7, "no silences");
    writable = !!data.writable;
    $("silence-submit").disabled = !data.writable;
    $("silence-submit").title = data.writable
      ? ""
      : "read-only: start rigger watch with --status-token-file to create silences here";
  }

  // Seconds since the epoch (the state file's times) as a time cell.
  function epochCell(secs) {
    return timeCell(secs ? new Date(secs * 1000).toISOString() : "");
  }

  function actionMessage(text, isError) {
    const r = $("action-result");
    r.textContent = text;
    r.className = isError ? "error" : "";
  }

  async function decide(id, verb) {
    try {
      const r = await api("/api/actions/" + encodeURIComponent(id) + "/" + verb, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      actionMessage("action " + id + (verb === "approve" ? " approved" : " rejected") + ": " + r.state, false);
    } catch (e) {
      actionMessage(writeError(e), true);
    }
    refresh();
  }

  function actionOutcome(a) {
    const parts = [];
    if (a.dryRun) parts.push("check mode");
    if (a.reason) parts.push(a.reason);
    if (a.changed !== null && a.changed !== undefined) parts.push(a.changed + " changed");
    if (a.exitCode !== null && a.exitCode !== undefined) parts.push("exit " + a.exitCode);
    if (a.approvedBy) parts.push("decided by " + a.approvedBy);
    if (a.state === "awaiting_approval" && a.expires) {
      parts.push("expires " + new Date(a.expires * 1000).toISOString());
    }
    const td = el("td", parts.join("; "));
    // A dry run's diff and a failed run's output: text from the hosts.
    for (const [name, text] of [["diff", a.diff], ["output", a.output]]) {
      if (!text) continue;
      const d = el("details");
      d.appendChild(el("summary", name));
      d.appendChild(el("pre", text));
      td.appendChild(d);
    }
    return td;
  }

  function renderActions(data) {
    const list = (data.actions || []).slice().reverse();
    const rows = list.map((a) => {
      const tr = el("tr");
      tr.dataset.action = String(a.id);
      tr.dataset.state = a.state;
      tr.appendChild(el("td", a.id));
      const st = el("td");
      st.appendChild(badge(a.state.replace("_", " "), "action-" + a.state));
      tr.appendChild(st);
      for (const v of [a.rule, a.host, a.trigger, a.playbook]) tr.appendChild(el("td", v));
      tr.appendChild(epochCell(a.created));
      tr.appendChild(actionOutcome(a));
      const act = el("td");
      if (a.state === "awaiting_approval") {
        for (const [verb, label] of [["approve", "Approve"], ["reject", "Reject"]]) {
          const b = el("button", label, verb);
          b.type = "button";
          b.disabled = !writable;
          b.title = writable ? "" : "read-only: start rigger watch with --status-token-file to decide here";
          b.addEventListener("click", () => decide(a.id, verb));
          act.appendChild(b);
        }
      }
      tr.appendChild(act);
      return tr;
    });
    fill("actions", rows, 9, "no actions");
  }

  function renderChecks(data) {
    $("checks-db").textContent = data.database
      ? "From " + data.database + (data.error ? " (" + data.error + ")" : "")
      : "No check history database.";
    const rows = (data.runs || []).map((r) => {
      const tr = el("tr");
      tr.dataset.run = String(r.id);
      for (const v of [r.id, r.started, r.status, r.playbook, r.hosts, r.drifted, r.unreachable, r.failed, r.remediated, r.exit_code]) {
        tr.appendChild(el("td", v === null || v === undefined ? "" : v));
      }
      return tr;
    });
    fill("checks", rows, 10, "no check runs");
  }

  function fmt(v) {
    if (!isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  }

  function chart(series) {
    const W = 300, H = 90, L = 42, T = 6, B = 14;
    const fig = el("figure");
    fig.dataset.series = series.key;
    fig.appendChild(el("figcaption", series.key));
    if (!series.watched) fig.appendChild(el("small", "newest samples only: no rule watches this series", "unwatched"));
    const pts = series.points || [];
    const s = svg("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    s.appendChild(svg("title", {}, series.key));
    if (pts.length > 0) {
      const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
      let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
      if (hi === lo) { hi += 1; lo -= lo === 0 ? 0 : 1; }
      const x = (t) => L + (t1 === t0 ? W - L : ((t - t0) / (t1 - t0)) * (W - L - 2));
      const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
      s.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B }));
      s.appendChild(svg("line", { x1: L, y1: H - B, x2: W, y2: H - B }));
      s.appendChild(svg("text", { x: 2, y: T + 8 }, fmt(hi)));
      s.appendChild(svg("text", { x: 2, y: H - B }, fmt(lo)));
      s.appendChild(svg("text", { x: L, y: H - 2 }, Math.round(t1 - t0) + " s; last " + fmt(pts[pts.length - 1][1])));
      s.appendChild(svg("polyline", { points: pts.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ") }));
    }
    fig.appendChild(s);
    return fig;
  }

  function renderCharts(data) {
    const list = data.series || [];
    $("charts").replaceChildren(...(list.length ? list.map(chart) : [el("p", "no samples yet", "empty")]));
  }

  function result(text, isError) {
    const r = $("silence-result");
    r.textContent = text;
    r.className = isError ? "error" : "";
  }

  function writeError(e) {
    if (e.status === 401) return "the status token is missing or wrong: enter it at the top (" + e.message + ")";
    return e.message;
  }

  // `a=b, c=~"x,y"`: split at commas that start a new matcher.
  function parseMatchers(text) {
    return text
      .split(/,(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=))/)
      .map((m) => m.trim())
      .filter((m) => m.length > 0);
  }

  async function createSilence(ev) {
    ev.preventDefault();
    const body = {
      matchers: parseMatchers($("silence-matchers").value),
      duration: $("silence-duration").value.trim() || "1h",
      comment: $("silence-comment").value,
    };
    const author = $("silence-author").value.trim();
    if (author) body.createdBy = author;
    try {
      const r = await api("/api/silences", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const warn = (r.warnings || []).join("; ");
      result("silence " + r.id + " created until " + r.endsAt + " (matches " + r.matchingAlerts + " current alerts)" + (warn ? "; " + warn : ""), false);
      $("silence-comment").value = "";
    } catch (e) {
      result(writeError(e), true);
    }
    refresh();
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [hosts, alerts, silences, checks, actions] = await Promise.all([
        api("/api/hosts"),
        api("/api/alerts"),
        api("/api/silences"),
        api("/api/checks"),
        api("/api/actions"),
      ]);
      renderHosts(hosts);
      renderAlerts(Array.isArray(alerts) ? alerts : []);
      renderSilences(silences);
      renderActions(actions);
      renderChecks(checks);
      if (chartHost !== null) renderCharts(await api("/api/series?host=" + encodeURIComponent(chartHost)));
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = "yes";
      message("");
    } catch (e) {
      message(e.status === 401 ? "This status page needs the token: enter it at the top." : "Cannot reach rigger watch: " + e.message);
    } finally {
      busy = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token").value = token;
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      token = $("token").value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      refresh();
    });
    $("token-forget").addEventListener("click", () => {
      token = "";
      $("token").value = "";
      sessionStorage.removeItem(TOKEN_KEY);
      refresh();
    });
    $("silence-form").addEventListener("submit", createSilence);
    $("chart-host").addEventListener("change", (ev) => {
      chartHost = ev.target.value;
      refresh();
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
  });
})();
