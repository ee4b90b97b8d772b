// Call history: the filter form maps onto GET /api/calls parameters; "Older calls" follows next_before.
import { ANSWERED, api, callHref, clock, h, when } from "./common.js";

const form = document.getElementById("filters");
const list = document.getElementById("calls");
const more = document.getElementById("more");
const status = document.getElementById("status");
const PAGE = 25;
let next = null;

function query() {
  const shown = new URLSearchParams(location.search);
  const params = new URLSearchParams();
  for (const [key, value] of shown) {
    if (!value) continue;
    if (form.elements[key]) form.elements[key].value = value;
    if (key === "since" || key === "until") {
      // a day in the operator's time zone: from its first instant; "to" includes the whole day
      const day = new Date(`${value}T00:00:00`);
      if (Number.isNaN(day.getTime())) continue;
      if (key === "until") day.setDate(day.getDate() + 1);
      params.set(key, day.toISOString());
    } else {
      params.set(key, value);
    }
  }
  params.set("limit", String(PAGE));
  return params;
}

function row(call) {
  const urgency = call.lead?.urgency;
  const duration = call.media_ms ?? (call.duration_s ? call.duration_s * 1000 : null);
  return h("li", { class: `row${urgency === "emergency" ? " emergency" : ""}`, dataset: { sid: call.call_sid } },
    h("a", { href: callHref(call.call_sid) },
      h("span", { class: "when" }, when(call.created_at)),
      h("span", { class: "who" }, [call.from_number || "Unknown caller", call.lead?.name].filter(Boolean).join(" · ")),
      h("span", { class: "meta" }, [
        call.live ? "live now" : duration !== null ? clock(duration) : null,
        call.direction, call.mode ? ANSWERED[call.mode] ?? call.mode : null,
      ].filter(Boolean).join(" · ")),
      urgency ? h("span", { class: `badge ${urgency}` }, urgency) : null,
      call.lead ? h("span", { class: `badge lead-${call.lead.status}` },
        call.lead.status === "closed" ? "handled" : `lead ${call.lead.status}`) : null));
}

async function load(before) {
  const params = query();
  if (before) params.set("before", String(before));
  status.textContent = "Loading…";
  try {
    const page = await api(`/api/calls?${params}`);
    list.append(...page.calls.map(row));
    next = page.next_before ?? null;
    more.hidden = next === null;
    status.textContent = list.children.length ? `${list.children.length} calls shown` : "No calls match.";
  } catch (error) {
    status.textContent = `Could not load calls: ${error.message}`;
  }
}

more.addEventListener("click", () => load(next));
load(null);
