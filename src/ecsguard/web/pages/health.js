/* Health: the chosen service's CPU and memory; dragging over a chart narrows the range. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const data = ecsguard.pageData();
  if (!data.charts) return;
  const narrow = (from, to) => {
    const query = new URLSearchParams(window.location.search);
    query.delete("since");
    query.set("start", new Date(from * 1000).toISOString());
    query.set("end", new Date(to * 1000).toISOString());
    window.location.search = query.toString();
  };
  for (const container of document.querySelectorAll(".health-chart")) {
    const chart = data.charts[container.dataset.chart];
    if (!chart) continue;
    ecsguard.chart(container, chart.x, chart.series, { fill: true, onSelect: narrow });
  }
});
