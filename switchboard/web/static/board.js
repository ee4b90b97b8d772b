// The live board: one card per live call. Starts from GET /api/calls?live=true, then follows WS /api/live from
// the hub position that listing was taken at, so no event between the two is missed.
import { ANSWERED, LiveFeed, api, callHref, clock, h, markLine, timeOfDay } from "./common.js";

const board = document.getElementById("board");
const ended = document.getElementById("ended");
const empty = document.getElementById("empty");
const count = document.getElementById("count");
const cards = new Map();
// Twilio's final call statuses (https://www.twilio.com/docs/voice/api/call-resource#call-status-values).
const OVER = new Set(["completed", "busy", "no-answer", "failed", "canceled"]);

function card(sid, known = false) {
  let c = cards.get(sid);
  if (c) return c;
  const el = {
    banner: h("p", { class: "banner", role: "alert", hidden: true }, "Emergency"),
    who: h("a", { class: "who", href: callHref(sid) }, "Unknown caller"),
    meta: h("p", { class: "meta" }),
    tracks: h("p", { class: "tracks" }),
    line: h("p", { class: "last" }),
  };
  el.root = h("li", { class: "card", dataset: { sid } }, el.banner, el.who, el.meta, el.tracks, el.line);
  c = { sid, el, number: null, name: null, direction: null, mode: null, status: "", startedAt: Date.now(),
        tracks: {}, urgency: null };
  cards.set(sid, c);
  board.prepend(el.root);
  refresh();
  if (!known) details(c);
  return c;
}

async function details(c) {
  try {
    const call = await api(`/api/calls/${encodeURIComponent(c.sid)}`);
    apply(c, call);
  } catch (error) {
    console.warn("call details", error);
  }
}

function apply(c, call) {
  const outbound = (call.direction ?? "").startsWith("outbound"); // the agent calling someone: show whom
  c.number = (outbound ? call.to_number : call.from_number) ?? c.number;
  c.direction = call.direction ?? c.direction;
  c.mode = call.mode ?? c.mode;
  c.status ||= call.status ?? ""; // live call.status events are newer than a REST read that raced them
  if (call.started_at) {
    c.startedAt = Date.parse(call.started_at);
    c.streamed = true;
  }
  if (call.lead?.name) c.name = call.lead.name;
  render(c);
}

function render(c) {
  const { el } = c;
  el.who.textContent = [c.number || "Unknown caller", c.name].filter(Boolean).join(" · ");
  el.meta.textContent = [c.direction, c.mode ? `answered by ${ANSWERED[c.mode] ?? c.mode}` : null,
    clock(Date.now() - c.startedAt), c.status].filter(Boolean).join(" · ");
  el.tracks.replaceChildren(...Object.entries(c.tracks).map(([track, t]) =>
    h("span", { class: `track ${t.state}` }, `${track === "inbound" ? "caller" : "agent"}: ${t.label}`)));
  el.banner.hidden = c.urgency !== "emergency";
  el.root.classList.toggle("emergency", c.urgency === "emergency");
}

function refresh() {
  empty.hidden = cards.size > 0;
  count.textContent = cards.size ? `(${cards.size})` : "";
}

function track(c, name) {
  c.tracks[name] ??= { label: "…", state: "ok" };
  return c.tracks[name];
}

function onEvent(e) {
  if (e.type === "resync") return reload();
  const sid = e.call_sid;
  if (!sid) return;
  if (e.type === "call.ended") return finish(sid, e);
  if (e.type === "call.status" && OVER.has(e.status)) { // a streamed call leaves with its call.ended
    const c = cards.get(sid);
    if (c && !c.streamed) finish(sid, { ended_at: new Date().toISOString(), media_ms: 0 }); // never answered
    return;
  }
  const c = card(sid);
  switch (e.type) {
    case "call.started":
      c.streamed = true;
      c.startedAt = Date.parse(e.started_at) || c.startedAt;
      break;
    case "call.status":
      c.status = e.status;
      break;
    case "transcript": {
      const t = track(c, e.track);
      if (t.state !== "switched" && t.state !== "error") t.label = e.provider;
      else if (!t.label.endsWith(e.provider)) t.label = e.provider;
      if (e.text) {
        c.el.line.replaceChildren(h("span", { class: "who" }, e.speaker ?? e.track), " ",
          h("span", { class: e.is_final ? "text" : "text interim" }, e.text));
      }
      if (e.is_final) markLine(e);
      break;
    }
    case "provider.switched": {
      const t = track(c, e.track);
      t.label = `${e.from} → ${e.to} (${e.reason})`;
      t.state = "switched";
      break;
    }
    case "transcriber.error": {
      const t = track(c, e.track);
      t.label = "transcription failed";
      t.state = "error";
      break;
    }
    case "extraction": {
      const facts = e.facts ?? {};
      if (facts.caller_name) c.name = facts.caller_name;
      if (facts.urgency) c.urgency = facts.urgency;
      break;
    }
    default:
      break;
  }
  render(c);
}

function finish(sid, e) {
  const c = cards.get(sid);
  if (!c) return;
  cards.delete(sid);
  c.el.root.remove();
  refresh();
  endedRow(sid, [c.number || "Unknown caller", c.name].filter(Boolean).join(" · "), e.ended_at, e.media_ms);
}

function endedRow(sid, label, endedAt, mediaMs, append = false) {
  ended.querySelector(`li[data-sid="${CSS.escape(sid)}"]`)?.remove();
  const li = h("li", { dataset: { sid } }, h("a", { href: callHref(sid) }, label), " ",
    h("span", { class: "meta" }, `ended ${timeOfDay(endedAt)} · ${clock(mediaMs ?? 0)}`));
  if (append) ended.append(li);
  else ended.prepend(li);
  while (ended.children.length > 10) ended.lastElementChild.remove();
}

let feed = null;

async function reload() {
  feed?.stop();
  const listing = await api("/api/calls?live=true&limit=500");
  const live = new Set(listing.calls.map((call) => call.call_sid));
  for (const sid of [...cards.keys()]) if (!live.has(sid)) finish(sid, {});
  for (const call of listing.calls) apply(card(call.call_sid, true), call);
  refresh();
  const recent = await api("/api/calls?live=false&limit=5");
  ended.replaceChildren();
  for (const call of recent.calls) {
    endedRow(call.call_sid, [call.from_number || "Unknown caller", call.lead?.name].filter(Boolean).join(" · "),
      call.ended_at, call.media_ms, true);
  }
  feed = new LiveFeed("/api/live", { after: listing.live_after ?? 0, key: "id", onEvent });
  feed.start();
}

setInterval(() => cards.forEach(render), 1000);
reload();
