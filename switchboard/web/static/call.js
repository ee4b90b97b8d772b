// One call. While it is live: follows WS /api/live/{sid} (resuming after drops) for the transcript, the lead
// fields as they are extracted, and provider switches and errors. Once it has ended: the stereo recording with
// the transcript in sync (click a line to play from it), facts, lead, post-call jobs and providers, from REST.
import {
  ANSWERED, LiveFeed, api, callBackButton, clock, fieldValues, h, renderFields, unconfirmedOf, when,
} from "./common.js";
import { Transcript } from "./transcript.js";

const root = document.getElementById("call");
const sid = root.dataset.sid;
const $ = (id) => document.getElementById(id);
const audio = $("audio");
const transcript = new Transcript($("transcript"), {
  onSeek: (ms) => {
    if ($("player").hidden) return;
    audio.currentTime = ms / 1000;
    audio.play().catch(() => {});
  },
});
const seenProviders = new Set();
let feed = null;
let followedLive = false; // the transcript on screen came from the live feed: keep it, it is the whole call

function header(call) {
  const name = call.lead?.name || call.extraction?.data?.caller_name;
  $("title").textContent = [party(call) || "Unknown caller", name].filter(Boolean).join(" · ");
  document.title = `${$("title").textContent} · Switchboard`;
  const parts = [call.direction, call.mode ? `answered by ${ANSWERED[call.mode] ?? call.mode}` : null,
    when(call.started_at || call.created_at), call.live ? "live" : call.end_reason ? `ended (${call.end_reason})` : null,
    call.media_ms ? clock(call.media_ms) : null, call.status];
  $("summary").textContent = parts.filter(Boolean).join(" · ");
  actions(call);
}

// The other party: who called us, or whom an outbound call rang.
const party = (call) => ((call.direction ?? "").startsWith("outbound") ? call.to_number : call.from_number);
// The number to call back: the one the caller asked to be called on, else the other party's.
const otherParty = (call) => call.extraction?.data?.callback_number || party(call) || null;

let callBackTo;

function actions(call) {
  const to = call.live ? null : otherParty(call);
  if (to === callBackTo) return;
  callBackTo = to;
  $("actions").replaceChildren(...[callBackButton(to, call.lead?.id, $("call-status"))].filter(Boolean));
}

function emergency(urgency) {
  $("emergency").hidden = urgency !== "emergency";
}

function timeline(text, kind) {
  $("timeline").append(h("li", { class: kind }, text));
}

function providers(list) {
  for (const p of list) seenProviders.add(p);
  $("providers").textContent = seenProviders.size ? `Used: ${[...seenProviders].join(", ")}` : "";
}

const trackName = (track) => (track === "inbound" ? "caller" : track === "outbound" ? "agent" : track);

function onEvent(e) {
  switch (e.type) {
    case "transcript":
      transcript.add(e);
      if (e.provider) providers([e.provider]);
      break;
    case "extraction":
      renderFields($("fields"), fieldValues(e.facts), unconfirmedOf(e.facts));
      emergency(e.facts?.urgency);
      break;
    case "provider.switched":
      timeline(`${clock(e.media_ms ?? 0)} ${trackName(e.track)}: ${e.from} → ${e.to} (${e.reason})`, "switch");
      break;
    case "transcriber.error":
      timeline(`${trackName(e.track)}: ${e.error}`, "error");
      break;
    case "call.status":
      timeline(`status: ${e.status}`, "status");
      break;
    case "call.ended":
      timeline(`${clock(e.media_ms ?? 0)} call ended (${e.reason})`, "status");
      feed?.stop();
      feed = null;
      transcript.dropInterims();
      settle();
      break;
    case "resync":
      followedLive = false;
      loadPast(); // older events are gone from the hub: take the stored transcript instead
      break;
    default:
      break;
  }
}

async function loadPast(call) {
  call ??= await api(`/api/calls/${encodeURIComponent(sid)}`);
  header(call);
  if (!followedLive) transcript.fill(call.transcript);
  if (call.extraction) {
    renderFields($("fields"), fieldValues(call.extraction.data), unconfirmedOf(call.extraction.data));
  }
  emergency(call.lead?.urgency ?? call.extraction?.data?.urgency);
  providers(call.providers ?? []);
  $("timeline").replaceChildren();
  for (const s of call.stats?.switches ?? []) {
    timeline(`${clock(s.media_ms)} ${trackName(s.track)}: ${s.from} → ${s.to} (${s.reason})`, "switch");
  }
  for (const error of call.stats?.transcription_errors ?? []) timeline(error, "error");
  if (call.end_reason) timeline(`call ended (${call.end_reason})`, "status");
  lead(call.lead);
  jobs(call.jobs ?? []);
  if (call.recording_key && !call.live) {
    const src = `/api/calls/${encodeURIComponent(sid)}/recording`;
    if (audio.getAttribute("src") !== src) audio.setAttribute("src", src);
    $("player").hidden = false;
  }
  return call;
}

function lead(l) {
  $("lead-box").hidden = !l;
  if (!l) return;
  renderFields($("lead"), fieldValues(l), unconfirmedOf(l));
  $("lead").append(h("dt", {}, "Status"), h("dd", { dataset: { field: "status" } }, l.status),
    h("dt", {}, "Calls"), h("dd", {}, String(l.call_count)));
}

const JOBS = { extract: "details extracted", lead: "lead saved", sms: "emergency SMS sent", archive: "archived" };

function jobs(list) {
  $("jobs-box").hidden = list.length === 0;
  $("jobs").replaceChildren(...list.map((job) => h("li", { class: `job ${job.status}` },
    `${JOBS[job.kind] ?? job.kind}: ${job.status}${job.last_error ? ` (${job.last_error})` : ""}`)));
}

// After the end: the stored call, then again while its post-call jobs run (they fill in the lead).
async function settle() {
  for (let i = 0; i < 30; i += 1) {
    const call = await loadPast();
    const pending = (call.jobs ?? []).some((job) => job.status === "pending" || job.status === "running");
    if (!call.live && (call.jobs ?? []).length && !pending) return;
    await new Promise((resolve) => setTimeout(resolve, 1000 + i * 250));
  }
}

audio.addEventListener("timeupdate", () => transcript.highlight(audio.currentTime * 1000));

async function start() {
  renderFields($("fields"), {});
  const call = await api(`/api/calls/${encodeURIComponent(sid)}`);
  header(call);
  if (call.live || (!call.started_at && !call.ended_at)) { // streaming, or an outbound call still ringing
    followedLive = true;
    lead(call.lead);
    feed = new LiveFeed(`/api/live/${encodeURIComponent(sid)}`, { after: 0, key: "seq", onEvent });
    feed.start();
  } else {
    await loadPast(call);
    if ((call.jobs ?? []).some((job) => job.status === "pending" || job.status === "running")) settle();
  }
}

start();
