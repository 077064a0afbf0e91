/* Audit trail: events per hour (or day) as bars; dragging across the chart narrows the window. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const data = ecsguard.pageData();
  const container = document.getElementById("audit-chart");
  if (!container || !data.chart || !data.chart.x.length) return;
  ecsguard.chart(container, data.chart.x, [
    { label: "events", values: data.chart.events },
    { label: "errors", values: data.chart.errors },
  ], {
    bars: true,
    legend: true,
    onSelect: (from, to) => {
      const query = new URLSearchParams(window.location.search);
      query.delete("since");
      query.set("start", new Date(from * 1000).toISOString());
      query.set("end", new Date(to * 1000).toISOString());
      window.location.search = query.toString();
    },
  });
});
