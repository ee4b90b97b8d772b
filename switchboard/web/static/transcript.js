// A call's two-track transcript as a conversation. Finals are placed by media time; each track has at most one
// interim line (greyed), replaced in place by the next interim and removed when that track's final arrives.
// A line is whoever spoke (caller, agent — a voice agent's turns come as speaker "agent", provider "tts") and
// what they said, as text.
import { clock, h, markLine, speakerClass, speakerName } from "./common.js";

export class Transcript {
  constructor(list, { onSeek } = {}) {
    this.list = list;
    this.onSeek = onSeek;
    this.interims = new Map(); // track -> element
    this.current = null;
  }

  line(event, interim) {
    const seek = this.onSeek
      ? h("button", { type: "button", class: "at", "aria-label": `Play from ${clock(event.start_ms)}` },
          clock(event.start_ms))
      : h("span", { class: "at" }, clock(event.start_ms));
    const li = h("li", {
      class: `line ${speakerClass(event)}${interim ? " interim" : ""}`,
      dataset: { start: event.start_ms, end: event.end_ms, track: event.track },
    },
    h("span", { class: "who" }, speakerName(event)), " ", seek, " ",
    event.provider ? h("span", { class: "prov" }, event.provider) : null,
    h("p", { class: "text" }, event.text));
    if (this.onSeek) li.addEventListener("click", () => this.onSeek(event.start_ms));
    return li;
  }

  // A live transcript event: interims replace the track's previous interim; a final replaces it for good.
  add(event) {
    if (!event.text && !event.is_final) return;
    const old = this.interims.get(event.track);
    if (!event.is_final) {
      const li = this.line(event, true);
      if (old) old.replaceWith(li);
      else this.list.append(li);
      this.interims.set(event.track, li);
      return;
    }
    if (old) {
      old.remove();
      this.interims.delete(event.track);
    }
    if (event.text) this.insert(this.line(event, false), event.start_ms);
    markLine(event);
  }

  // Finals in media-time order (ties keep arrival order); interims stay after the finals.
  insert(li, start) {
    let before = null;
    for (const node of this.list.children) {
      if (node.classList.contains("interim")) {
        before ??= node;
        break;
      }
      if (Number(node.dataset.start) > start) {
        before = node;
        break;
      }
    }
    this.list.insertBefore(li, before);
  }

  // The call is over: an interim no final replaced is not part of the transcript.
  dropInterims() {
    for (const li of this.interims.values()) li.remove();
    this.interims.clear();
  }

  // Stored segments, all final.
  fill(segments) {
    this.list.replaceChildren(...segments.map((segment) => this.line(segment, false)));
    this.interims.clear();
  }

  // Highlight the line being played.
  highlight(ms) {
    let found = null;
    for (const node of this.list.children) {
      if (Number(node.dataset.start) <= ms) found = node;
      else break;
    }
    if (found === this.current) return;
    this.current?.classList.remove("playing");
    this.current?.removeAttribute("aria-current");
    found?.classList.add("playing");
    found?.setAttribute("aria-current", "true");
    this.current = found;
  }
}
