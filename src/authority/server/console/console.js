// The m2mguard authority's operator console (docs/authority.md#the-console). Served by the
// authority with a strict Content-Security-Policy and Trusted Types: everything the API
// answers is put into the page as text (textContent, createElement), never parsed as HTML —
// node ids and report fields are chosen by whoever enrols a node or runs a gateway.
"use strict";

(() => {
  const TOKEN_KEY = "m2mguard.operator-token";
  const REFRESH_MS = 5000;
  const REPORTS_SHOWN = 100; // the newest reports kept and shown
  const REPORT_PAGE = 1000; // the API's largest page
  const REPORT_PAGES = 20; // pages read per refresh, at most (the rest on the next one)
  const STATUSES = ["active", "suspended", "deactivated", "revoked", "removed"];

  const $ = (id) => document.getElementById(id);
  const view = {
    nodes: [],
    gateways: [],
    head: null,
    reports: [],
    reportsAfter: null, // the last report's pos; null before the first page
    reportsNote: "",
    offsetMs: 0, // the authority's clock (its Date header) minus this browser's
    refreshFailed: false, // the message shown is a refresh's failure
  };
  let timer = null;
  let refreshing = null;

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // One call to the operator API with the token of this tab; the answer's text.
  async function api(method, path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new ApiError(401, "not signed in");
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
      });
    } catch (e) {
      throw new ApiError(0, "the authority did not answer (" + e.message + ")");
    }
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) view.offsetMs = date - Date.now();
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = JSON.parse(text).error || text;
      } catch (_) {
        // not JSON: the text as it came
      }
      throw new ApiError(response.status, message);
    }
    return text;
  }

  const apiJson = async (method, path) => JSON.parse(await api(method, path));

  // The head's payload (the JWS's middle part). Not verified here: it came over this
  // authority's TLS connection; gateways verify the signature.
  function headPayload(jws) {
    const part = jws.trim().split(".")[1] || "";
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
  }

  const nowS = () => Math.floor((Date.now() + view.offsetMs) / 1000);

  // Unix seconds, or an RFC 3339 time as a report's members are, as one UTC time.
  function when(time) {
    if (typeof time === "string") return time.replace("T", " ");
    if (typeof time !== "number") return "";
    return new Date(time * 1000).toISOString().slice(0, 19).replace("T", " ") + "Z";
  }

  function age(seconds) {
    if (typeof seconds !== "number") return "";
    const s = Math.max(0, nowS() - seconds);
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // Any JSON value as one line of text.
  function text(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.map(text).join(", ");
    if (typeof value === "object") {
      return Object.entries(value)
        .map(([k, v]) => k + ": " + text(v))
        .join(", ");
    }
    return String(value);
  }

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = value;
    if (className) td.className = className;
    row.append(td);
    return td;
  }

  function statusCell(row, status) {
    const known = STATUSES.includes(status) ? status : "other";
    cell(row, text(status), "status status-" + known);
  }

  function button(label, className, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  function say(message, isError) {
    const p = $("message");
    p.textContent = message;
    p.className = isError ? "error" : "note";
    p.hidden = !message;
  }

  // --- confirmation --------------------------------------------------------------------------

  function confirmAction(question, detail) {
    const dialog = $("confirm");
    $("confirm-text").textContent = question;
    $("confirm-detail").textContent = detail;
    return new Promise((resolve) => {
      const done = (yes) => {
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        dialog.oncancel = null;
        if (dialog.open) dialog.close();
        resolve(yes);
      };
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
      dialog.oncancel = () => done(false);
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  const CONSEQUENCES = {
    "node deactivate":
      "Every gateway refuses its requests (4103, stage status) as soon as it has applied the record.",
    "node activate": "Gateways let its requests through again once they have applied the record.",
    "gateway deactivate":
      "That gateway refuses every request (4103, stage gateway) once it has applied the record; it keeps following the feed.",
    "gateway activate": "That gateway serves requests again once it has applied the record.",
  };

  async function act(what, id, action) {
    const question = action[0].toUpperCase() + action.slice(1) + " " + what + " " + id + "?";
    if (!(await confirmAction(question, CONSEQUENCES[what + " " + action]))) return;
    const path = "/v1/" + what + "s/" + encodeURIComponent(id) + "/" + action;
    try {
      const answer = await apiJson("POST", path);
      say(what + " " + id + " " + action + "d: published as record " + answer.seq + ".", false);
    } catch (e) {
      say(action + " " + what + " " + id + " failed: " + e.message + " (" + e.status + ")", true);
    }
    await refresh();
  }

  // --- panels --------------------------------------------------------------------------------

  function renderNodes() {
    const filter = $("filter").value.trim().toLowerCase();
    const shown = view.nodes.filter((n) => {
      if (!filter) return true;
      const fields = [n.id, n.kind, n.status, n.registrar || ""].concat(n.groups || []);
      return fields.some((f) => String(f).toLowerCase().includes(filter));
    });
    const rows = shown.map((n) => {
      const row = document.createElement("tr");
      row.dataset.id = n.id;
      cell(row, text(n.id), "id");
      cell(row, text(n.kind));
      statusCell(row, n.status);
      cell(row, text(n.groups));
      cell(row, text(n.registrar));
      const actions = cell(row, "");
      if (n.status === "active") {
        actions.append(button("Deactivate", "danger", () => act("node", n.id, "deactivate")));
      } else if (n.status === "deactivated" || n.status === "suspended") {
        actions.append(button("Activate", "", () => act("node", n.id, "activate")));
      }
      return row;
    });
    $("nodes").tBodies[0].replaceChildren(...rows);
    $("nodes-count").textContent = filter
      ? shown.length + " of " + view.nodes.length
      : String(view.nodes.length);
  }

  function renderGateways() {
    const head = view.head ? view.head.seq : null;
    const rows = view.gateways.map((g) => {
      const row = document.createElement("tr");
      row.dataset.id = g.id;
      cell(row, text(g.id), "id");
      statusCell(row, g.status);
      const c = g.confirmed;
      if (c) {
        cell(row, String(c.seq), "num");
        const behind = head === null ? "" : head - c.seq;
        const current = behind === 0;
        cell(row, current ? "up to date" : behind + " records", current ? "ok" : "stale");
        cell(row, age(c.received_at));
        cell(row, when(c.applied_at));
        cell(row, text(c.error), c.error ? "error" : "");
      } else {
        cell(row, "none yet", "stale");
        cell(row, head === null ? "" : "no ack", "stale");
        cell(row, "");
        cell(row, "");
        cell(row, "");
      }
      const actions = cell(row, "");
      if (g.status === "active") {
        actions.append(button("Deactivate", "danger", () => act("gateway", g.id, "deactivate")));
      } else if (g.status === "deactivated") {
        actions.append(button("Activate", "", () => act("gateway", g.id, "activate")));
      }
      return row;
    });
    $("gateways").tBodies[0].replaceChildren(...rows);
    $("gateways-count").textContent = String(view.gateways.length);
  }

  function renderReports() {
    const newest = view.reports.slice().reverse();
    const rows = newest.map((r) => {
      const row = document.createElement("tr");
      cell(row, when(r.received_at));
      cell(row, text(r.gateway), "id");
      cell(row, text(r.node), "id");
      cell(row, when(r.from) + " to " + when(r.to));
      cell(row, text(r.counts));
      cell(row, text(r.reasons));
      cell(row, text(r.rule));
      const a = r.action;
      cell(row, a ? text(a.status) + " by rule " + text(a.rule) + ", record " + text(a.seq) : "");
      return row;
    });
    $("reports").tBodies[0].replaceChildren(...rows);
    $("reports").hidden = rows.length === 0;
    const empty = $("reports-empty");
    empty.textContent = rows.length ? "" : "no reports" + view.reportsNote;
    empty.hidden = rows.length > 0;
    $("reports-count").textContent = rows.length ? "newest " + rows.length : "";
  }

  function renderHead() {
    const h = view.head;
    $("head").textContent = h
      ? "feed " + text(h.feed) + ", head seq " + h.seq + ", signed " + age(h.at)
      : "";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  // --- loading -------------------------------------------------------------------------------

  // Reports after the last one seen, page by page (at most REPORT_PAGES a refresh); 404 means
  // this authority has no reports API.
  async function loadReports() {
    view.reportsNote = "";
    for (let page = 0; page < REPORT_PAGES; page++) {
      const after = view.reportsAfter === null ? "" : "&after=" + view.reportsAfter;
      let list;
      try {
        list = (await apiJson("GET", "/v1/reports?limit=" + REPORT_PAGE + after)).reports || [];
      } catch (e) {
        if (e.status !== 404) throw e;
        view.reports = [];
        view.reportsNote = " (this authority has no reports API)";
        return;
      }
      if (list.length) {
        view.reportsAfter = list[list.length - 1].pos;
        view.reports = view.reports.concat(list).slice(-REPORTS_SHOWN);
      }
      if (list.length < REPORT_PAGE) return;
    }
    view.reportsNote = " loaded yet (catching up)";
  }

  async function load() {
    const [nodes, gateways, head] = await Promise.all([
      apiJson("GET", "/v1/nodes"),
      apiJson("GET", "/v1/gateways"),
      api("GET", "/v1/feed/head"),
    ]);
    view.nodes = (nodes.nodes || []).slice().sort((a, b) => (a.id < b.id ? -1 : 1));
    view.gateways = (gateways.gateways || []).slice().sort((a, b) => (a.id < b.id ? -1 : 1));
    view.head = headPayload(head);
    await loadReports();
  }

  // Reloads every panel; a refresh in progress is joined, not doubled.
  function refresh() {
    if (!refreshing) {
      refreshing = (async () => {
        try {
          await load();
          renderHead();
          renderNodes();
          renderGateways();
          renderReports();
          if (view.refreshFailed) say("", false);
          view.refreshFailed = false;
        } catch (e) {
          if (e.status === 401) return signOut("The authority refused the token: " + e.message + ".");
          say("refresh failed: " + e.message + (e.status ? " (" + e.status + ")" : ""), true);
          view.refreshFailed = true;
        } finally {
          refreshing = null;
        }
      })();
    }
    return refreshing;
  }

  // --- signing in and out --------------------------------------------------------------------

  function showConsole(signedIn) {
    $("login-view").hidden = signedIn;
    $("console-view").hidden = !signedIn;
    $("refresh").hidden = !signedIn;
    $("logout").hidden = !signedIn;
  }

  function signOut(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(timer);
    timer = null;
    view.nodes = [];
    view.gateways = [];
    view.reports = [];
    view.reportsAfter = null;
    view.head = null;
    for (const id of ["nodes", "gateways", "reports"]) $(id).tBodies[0].replaceChildren();
    $("head").textContent = "";
    $("updated").textContent = "";
    say("", false);
    showConsole(false);
    const error = $("login-error");
    error.textContent = reason || "";
    error.hidden = !reason;
    $("token").focus();
  }

  async function signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api("GET", "/v1/feed/head");
    } catch (e) {
      const why =
        e.status === 401
          ? "The authority refused this token (401: " + e.message + ")."
          : "Cannot sign in: " + e.message + (e.status ? " (" + e.status + ")" : "") + ".";
      return signOut(why);
    }
    $("login-error").hidden = true;
    $("token").value = "";
    showConsole(true);
    await refresh();
    if (!timer) timer = setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (token) signIn(token);
    });
    $("logout").addEventListener("click", () => signOut(""));
    $("refresh").addEventListener("click", () => refresh());
    $("filter").addEventListener("input", renderNodes);
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else showConsole(false);
  });
})();
