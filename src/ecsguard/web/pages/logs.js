/* Logs: the time picker, the histogram (drag to zoom), the record detail and the share link.
 * The search state lives in the URL: every change navigates to /logs?<state>, so reloading or
 * sending the URL shows the same search. Record text reaches the page as text nodes only. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const data = ecsguard.pageData();
  const form = document.getElementById("logs-form");
  const since = document.getElementById("since");
  const start = document.getElementById("start");
  const end = document.getElementById("end");
  const q = document.getElementById("q");

  // a relative range and start/end exclude each other: disabled inputs are not submitted
  const syncRange = () => {
    const custom = since.value === "";
    start.disabled = !custom;
    end.disabled = !custom;
  };
  since.addEventListener("change", syncRange);
  syncRange();

  for (const radio of form.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => {
      q.placeholder = radio.value === "insights" ? q.dataset.placeholderInsights : q.dataset.placeholderFilter;
    });
  }
  // Ctrl/Cmd+Enter runs the search from the query box
  q.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  const go = (changes) => {
    const params = new URLSearchParams(window.location.search);
    for (const [key, value] of Object.entries(changes)) {
      if (value) params.set(key, value);
      else params.delete(key);
    }
    window.location.search = params.toString();
  };

  const histogram = document.getElementById("histogram");
  if (histogram && data.histogram) {
    const iso = (seconds) => new Date(seconds * 1000).toISOString();
    ecsguard.chart(histogram, data.histogram.times,
      [{ label: histogram.dataset.label, values: data.histogram.counts }],
      { bars: true, onSelect: (from, to) => go({ since: "", start: iso(from), end: iso(to) }) });
  }

  const copy = document.getElementById("copy-link");
  copy.addEventListener("click", async () => {
    const url = new URL(data.link, window.location.origin).toString();
    try {
      await navigator.clipboard.writeText(url);
      copy.textContent = copy.dataset.copied;
    } catch (_) {
      copy.textContent = url; // no clipboard (plain http on another host): show it to copy by hand
    }
  });

  // the record detail: every column of the row, JSON text pretty-printed
  const detail = document.getElementById("detail");
  const rows = document.getElementById("rows");
  if (!rows) return;
  const show = (tr) => {
    const row = data.rows[Number(tr.dataset.index)];
    if (!row) return;
    const record = {};
    data.columns.forEach((column, i) => {
      let value = row[i];
      if (typeof value === "string" && /^\s*[{[]/.test(value)) {
        try { value = JSON.parse(value); } catch (_) { /* not JSON: keep the text */ }
      }
      record[column] = value;
    });
    for (const selected of rows.querySelectorAll("tr.selected")) selected.classList.remove("selected");
    tr.classList.add("selected");
    detail.classList.remove("muted");
    ecsguard.fill(detail, JSON.stringify(record, null, 2));
  };
  rows.addEventListener("click", (event) => {
    const tr = event.target.closest("tbody tr");
    if (tr) show(tr);
  });
  rows.addEventListener("keydown", (event) => {
    const tr = event.target.closest("tbody tr");
    if (tr && event.key === "Enter") show(tr);
  });
});
