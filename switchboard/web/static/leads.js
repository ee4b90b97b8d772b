// Leads, newest first: open ones by default; "Mark handled" closes one (POST /api/leads/{id}/handled), "Call back"
// has the voice agent call the lead's number about it (POST /api/calls).
import {
  api, callBackButton, callHref, fieldText, fieldValues, h, unconfirmedOf, when,
} from "./common.js";

const list = document.getElementById("leads");
const more = document.getElementById("more");
const status = document.getElementById("status");
const showAll = document.getElementById("show-all");
let next = null;

function row(lead) {
  const values = fieldValues(lead);
  const pending = unconfirmedOf(lead); // fields the lead's latest call heard with low confidence
  const button = h("button", { type: "button", class: "handled" }, "Mark handled");
  const state = h("span", { class: `badge lead-${lead.status}` }, lead.status === "closed" ? "handled" : lead.status);
  const li = h("li", { class: `row lead${lead.urgency === "emergency" ? " emergency" : ""}`,
    dataset: { lead: lead.id } },
  h("p", { class: "who" }, fieldText(values.caller_name, pending, "caller_name") || "Name not given", " · ",
    lead.phone || "withheld", " ", state,
    lead.urgency ? h("span", { class: `badge ${lead.urgency}` }, lead.urgency) : null),
  h("p", { class: "meta" }, ...(values.address || values.postcode ? [fieldText(values.address, pending, "address"),
    values.address && values.postcode ? ", " : null, fieldText(values.postcode, pending, "postcode")] :
    ["No address"])),
  h("p", {}, values.issue || ""),
  h("p", { class: "meta" }, "Call back: ", values.callback_number ? fieldText(values.callback_number, pending,
    "callback_number") : lead.phone || "—", ` · updated ${when(lead.updated_at)}`),
  h("p", { class: "calls" }, ...lead.calls.flatMap((sid, i) => [i ? " " : "",
    h("a", { href: callHref(sid) }, `call ${i + 1}`)])),
  h("p", { class: "actions" }, callBackButton(values.callback_number || lead.phone, lead.id, status), " ",
    lead.status === "closed" ? null : button));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const updated = await api(`/api/leads/${lead.id}/handled`, { method: "POST" });
      state.textContent = updated.status === "closed" ? "handled" : updated.status;
      button.remove();
      status.textContent = `Lead ${values.caller_name || lead.phone || lead.id} marked handled.`;
    } catch (error) {
      button.disabled = false;
      status.textContent = `Could not mark handled: ${error.message}`;
    }
  });
  return li;
}

async function load(before) {
  const params = new URLSearchParams({ limit: "25", status: showAll.checked ? "all" : "open" });
  if (before) params.set("before", String(before));
  try {
    const page = await api(`/api/leads?${params}`);
    list.append(...page.leads.map(row));
    next = page.next_before ?? null;
    more.hidden = next === null;
    if (!list.children.length) status.textContent = "No open leads.";
  } catch (error) {
    status.textContent = `Could not load leads: ${error.message}`;
  }
}

showAll.addEventListener("change", () => {
  list.replaceChildren();
  load(null);
});
more.addEventListener("click", () => load(next));
load(null);
