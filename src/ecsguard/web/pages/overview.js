/* Overview: open findings and alerts by severity as a bar chart. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const data = ecsguard.pageData();
  const container = document.getElementById("severity-chart");
  if (!data.posture || !container) return;
  const names = data.severities;  // most severe first (JSON objects carry no order)
  const x = names.map((_, i) => i);
  ecsguard.chart(container, x, [
    { label: "findings", values: names.map((n) => data.posture.by_severity[n]) },
    { label: "alerts", values: names.map((n) => data.alerts.by_severity[n] || 0) },
  ], { bars: true, legend: true, categories: names });
});
