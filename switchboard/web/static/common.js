// Shared by every page: REST calls with the session cookie (and the CSRF token when they change something),
// DOM building that only ever inserts text, times in the operator's own time zone, and the resumable live feed.
// Nothing a caller said is ever parsed as HTML: h() appends strings as text nodes and sets no event handlers
// or URLs from data.

export const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class SignedOut extends Error {}

function toSignIn() {
  location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  throw new SignedOut("signed out");
}

export async function api(path, { method = "GET", json } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const body = json === undefined ? undefined : JSON.stringify(json);
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (response.status === 401) toSignIn();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${method} ${path}: ${response.status}`);
  return data;
}

// h("li", {class: "x", dataset: {sid}}, "text", child): attributes and children from data are text only.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (key === "href") node.setAttribute("href", localHref(value));
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Links only ever point into this site: a value from data can never become a javascript: or foreign URL.
function localHref(value) {
  const text = String(value);
  if (!text.startsWith("/") || text.startsWith("//")) throw new Error(`refusing non-local link ${text.slice(0, 40)}`);
  return text;
}

export const callHref = (sid) => `/calls/${encodeURIComponent(sid)}`;

// The browser's own time zone is the operator's; its name is shown so a shared screenshot is unambiguous.
const stamp = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const when = (iso) => (iso ? stamp.format(new Date(iso)) : "");
export const timeOfDay = (iso) => (iso ? timeOnly.format(new Date(iso)) : "");

export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(s / 3600);
  const mmss = `${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  return hours ? `${hours}:${mmss}` : mmss;
}

export const SPEAKER_NAMES = { caller: "Caller", agent: "Agent" };
export const speakerName = (event) => SPEAKER_NAMES[event.speaker] ?? event.speaker ?? event.track ?? "?";
export const speakerClass = (event) => (event.speaker === "agent" || event.track === "outbound" ? "agent" : "caller");

export const ANSWERED = { operator: "operator", agent: "voice agent", voicemail: "nobody (message)" };

export const FIELDS = [
  ["caller_name", "Name"], ["address", "Address"], ["postcode", "Postcode"], ["issue", "Issue"],
  ["urgency", "Urgency"], ["callback_number", "Callback number"],
];

// One view of the lead fields, from a live extraction event (facts), a stored extraction (data) or a lead row.
export function fieldValues(facts) {
  if (!facts) return {};
  const issue = [facts.issue_category?.replaceAll("_", " "), facts.summary].filter(Boolean).join(": ");
  return {
    caller_name: facts.caller_name ?? facts.name, address: facts.address, postcode: facts.postcode,
    issue: issue || null, urgency: facts.urgency, callback_number: facts.callback_number,
  };
}

// The fields to confirm with the caller: an extraction's needs_confirmation (contact fields heard with low
// confidence), with each one's evidence (source, confidence) when there is some; a lead's own "unconfirmed" list.
export function unconfirmedOf(facts) {
  const out = new Map();
  for (const key of facts?.needs_confirmation ?? facts?.unconfirmed ?? []) out.set(key, facts.evidence?.[key] ?? null);
  return out;
}

const SOURCES = { said: "heard once", spelled: "spelled out", corrected: "corrected", caller_id: "caller ID",
  inferred: "inferred", confirmed: "read back" };

// "unconfirmed" as text (not only a style), with how the value was heard when that is known.
export function unconfirmedFlag(evidence) {
  const how = evidence ? [SOURCES[evidence.source] ?? evidence.source,
    typeof evidence.confidence === "number" ? `${Math.round(evidence.confidence * 100)}% sure` : null] : [];
  const detail = how.filter(Boolean).join(", ");
  return h("span", { class: "flag" }, detail ? `unconfirmed (${detail})` : "unconfirmed");
}

// A value as text, flagged when it is to be confirmed.
export function fieldText(value, unconfirmed, key) {
  if (!value || !unconfirmed?.has(key)) return value;
  return h("span", { class: "unconfirmed", dataset: { unconfirmed: key } }, value, " ",
    unconfirmedFlag(unconfirmed.get(key)));
}

export function renderFields(dl, values, unconfirmed = new Map()) {
  dl.replaceChildren();
  for (const [key, label] of FIELDS) {
    const value = values[key];
    const pending = Boolean(value) && unconfirmed.has(key);
    dl.append(h("dt", {}, label), h("dd", { dataset: { field: key }, class: value ? (pending ? "unconfirmed" : "") :
      "unknown" }, value || "—", pending ? " " : null, pending ? unconfirmedFlag(unconfirmed.get(key)) : null));
  }
}

// "Call back": the voice agent calls the number through POST /api/calls, the route any client uses, with the lead
// so the agent has its context. The new call is announced on the live board; the status line links to it.
export function callBackButton(to, leadId, status) {
  if (!to) return null;
  const button = h("button", { type: "button", class: "call-back" }, `Call back ${to}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = `Calling ${to}…`;
    try {
      const placed = await api("/api/calls", { method: "POST", json: { to, lead_id: leadId ?? undefined } });
      status.replaceChildren(`Calling ${placed.to}: `, h("a", { href: callHref(placed.call_sid), class: "placed" },
        "follow the call"), ".");
    } catch (error) {
      status.textContent = `Could not call ${to}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function setConnection(state) {
  const el = document.getElementById("conn");
  if (!el) return;
  el.textContent = { live: "● live", reconnecting: "○ reconnecting…", closed: "" }[state] ?? state;
  el.dataset.state = state;
}

// A live subscription that survives dropped connections: it remembers the last event number it handled
// (seq for one call, id for all calls), reconnects with ?after=that number, and ignores anything it has seen,
// so a drop loses no event and doubles none. A resync event (resume point no longer retained) is passed on.
export class LiveFeed {
  constructor(path, { after = 0, key = "seq", onEvent, onState = setConnection }) {
    Object.assign(this, { path, last: after, key, onEvent, onState, retries: 0, stopped: false, ws: null });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.ws?.close(1000);
    this.onState("closed");
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.path}?after=${this.last}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retries = 0;
      this.onState("live");
    };
    ws.onmessage = (message) => {
      arrivedAt = message.timeStamp;
      this.receive(JSON.parse(message.data));
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.stopped) return;
      this.onState("reconnecting");
      const delay = Math.min(5000, 200 * 2 ** this.retries) * (0.75 + Math.random() / 2);
      this.retries += 1;
      setTimeout(() => this.reconnect(), delay);
    };
  }

  async reconnect() {
    if (this.stopped) return;
    if (this.retries > 2) {
      try {
        await api("/api/calls?limit=1"); // signed out? api() goes to the sign-in page
      } catch (error) {
        if (error instanceof SignedOut) return;
      }
    }
    this.connect();
  }

  receive(event) {
    const n = event[this.key];
    if (event.type !== "resync" && typeof n === "number") {
      if (n <= this.last) return;
      this.last = n;
    }
    this.onEvent(event);
  }
}

// Performance mark for the dashboard benchmark: when a transcript event's line is in the page. The wall clock
// (Date.now) is recorded too: performance.timeOrigin + startTime drifts from it by milliseconds over a run.
// sentAt: when the server wrote the event to this page's socket (its sent_at); inPage: ms from the websocket
// message handler starting (the event's timeStamp) to the line.
let arrivedAt = 0;
export function markLine(event) {
  performance.mark("sb:line", { detail: { call: event.call_sid, seq: event.seq, id: event.id, at: Date.now(),
    sentAt: event.sent_at, inPage: performance.now() - arrivedAt } });
}
