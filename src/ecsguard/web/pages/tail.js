/* Live tail: an EventSource on /api/tail. The browser resends Last-Event-ID when it reconnects,
 * so the server continues where the stream stopped; its `missed` event is shown as a notice.
 * Started back (`since`), the stored lines come first, then a `history` notice, then live ones.
 * Pausing keeps buffering (bounded) and shows the count; new filter settings reopen the stream.
 * Log text becomes text nodes and <mark> elements only, never markup. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { el, fill } = ecsguard;
  const data = ecsguard.pageData();
  const lines = document.getElementById("tail-lines");
  const status = document.getElementById("tail-status");
  const errorBox = document.getElementById("tail-error");
  const pauseButton = document.getElementById("tail-pause");
  const form = document.getElementById("tail-form");
  const max = data.settings.max_lines;
  let terms = data.settings.highlight || [];
  let source = null;
  let state = "connecting";
  let paused = false;
  let pending = [];
  let waiting = 0; // records received while paused (pending keeps the newest `max`)

  const say = (key, values = {}) =>
    (status.dataset[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

  function showStatus() {
    fill(status, paused ? say("paused", { n: waiting }) : say(state));
    status.classList.toggle("error", state === "closed");
  }

  /** The text as text nodes, with each occurrence of a filter term in a <mark>. */
  function highlight(text) {
    const ranges = [];
    for (const term of terms) {
      for (let at = text.indexOf(term); at !== -1; at = text.indexOf(term, at + term.length)) {
        ranges.push([at, at + term.length]);
      }
    }
    if (!ranges.length) return [text];
    ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const out = [];
    let pos = 0;
    for (const [start, end] of ranges) {
      if (end <= pos) continue;
      const from = Math.max(start, pos);
      if (from > pos) out.push(text.slice(pos, from));
      out.push(el("mark", {}, text.slice(from, end)));
      pos = end;
    }
    if (pos < text.length) out.push(text.slice(pos));
    return out;
  }

  function line(record) {
    const level = String(record.level || "-");
    // JSON leaves out a zero fraction (T10:00:00+00:00): parse the clock, do not cut it
    const clock = /T(\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?/.exec(String(record.time || ""));
    const when = clock ? `${clock[1]}.${(clock[2] || "").padEnd(3, "0")}` : "";
    const who = String(record.service || record.container || record.cluster || "-");
    return el("div", { class: "line" },
      el("span", { class: "tail-time muted" }, when), " ",
      el("span", { class: "tail-who" }, who), " ",
      el("span", { class: `tail-level level-${level.replace(/[^A-Za-z]/g, "")}` }, level), " ",
      el("span", { class: "tail-message" }, highlight(String(record.message ?? ""))));
  }

  function add(node) {
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    lines.append(node);
    while (lines.childElementCount > max) lines.firstElementChild.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  function onRecord(event) {
    let record;
    try { record = JSON.parse(event.data); } catch (_) { return; }
    if (paused) {
      pending.push(record);
      if (pending.length > max) pending.shift();
      waiting += 1;
      showStatus();
      return;
    }
    add(line(record));
  }

  function onMissed(event) {
    let info = {};
    try { info = JSON.parse(event.data); } catch (_) { /* keep the empty notice */ }
    const text = info.missed
      ? say("missed", { n: info.missed, reason: info.reason || "" })
      : say("missedUnknown", { reason: info.reason || "" });
    add(el("div", { class: "line tail-notice" }, text));
  }

  function onHistory(event) {
    let info = {};
    try { info = JSON.parse(event.data); } catch (_) { /* keep the empty notice */ }
    add(el("div", { class: "line tail-notice" }, say("history", { n: info.records ?? 0 })));
  }

  function connect(stream) {
    if (source) source.close();
    source = null;
    if (!stream) return;
    state = "connecting";
    showStatus();
    source = new EventSource(stream);
    source.addEventListener("ready", () => { state = "live"; showStatus(); });
    source.addEventListener("message", onRecord);
    source.addEventListener("missed", onMissed);
    source.addEventListener("history", onHistory);
    source.addEventListener("error", () => {
      // CLOSED: the server answered with an error status; otherwise the browser retries
      state = source && source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
      showStatus();
    });
  }

  pauseButton.addEventListener("click", () => {
    paused = !paused;
    fill(pauseButton, paused ? pauseButton.dataset.resume : pauseButton.dataset.pause);
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      for (const record of pending) add(line(record));
      pending = [];
      waiting = 0;
    }
    showStatus();
  });

  document.getElementById("tail-clear").addEventListener("click", () => lines.replaceChildren());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (String(value).trim()) params.set(key, String(value).trim());
    try {
      const reply = await ecsguard.get(`/tail.json?${params}`);
      if (reply.error) {
        fill(errorBox, reply.error);
        errorBox.hidden = false;
        return;
      }
      errorBox.hidden = true;
      terms = reply.settings.highlight || [];
      connect(reply.settings.stream);
      window.history.replaceState(null, "", `/tail${params.toString() ? "?" + params : ""}`);
    } catch (err) {
      fill(errorBox, err.message);
      errorBox.hidden = false;
    }
  });

  if (data.error) {
    fill(status); // the error above says why nothing streams
  } else {
    connect(data.settings.stream);
  }
});
