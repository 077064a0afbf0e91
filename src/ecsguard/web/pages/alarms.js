/* Alarms: the per-hour chart, silences (add, end), reloading the rules and the event-pattern
   tester. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { el, fill, post, chart, pageData } = ecsguard;
  const data = pageData();

  const history = document.getElementById("alarms-history");
  if (history && data.history && data.history.x.length) {
    const series = Object.entries(data.history.series).map(([label, values]) => ({ label, values }));
    chart(history, data.history.x, series, { bars: true, legend: true });
  }

  // -- silences: the server renders the list, so a change reloads the page
  const status = document.getElementById("silence-status");
  const form = document.getElementById("silence-form");
  const failed = (node, err) => fill(node, el("span", { class: "error" }, err.message));
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = new FormData(form);
      const key = String(fields.get("key") || "").split(",").map((k) => k.trim()).filter(Boolean);
      try {
        await post("/alarms/silence", {
          rule: fields.get("rule"), key, minutes: Number(fields.get("minutes")), reason: fields.get("reason"),
        });
        window.location.reload();
      } catch (err) { failed(status, err); }
    });
  }
  for (const button of document.querySelectorAll("button.silence-rule")) {
    button.addEventListener("click", () => {
      if (!form) return;
      form.elements.rule.value = button.dataset.rule;
      form.elements.reason.focus();
    });
  }
  for (const button of document.querySelectorAll("button.unsilence")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await post("/alarms/unsilence", { id: button.dataset.id });
        window.location.reload();
      } catch (err) { button.disabled = false; failed(button.parentElement, err); }
    });
  }

  // -- reloading the rule files (admins): the rules table is the server's, so success reloads
  const reload = document.getElementById("reload-rules");
  if (reload) {
    const reloadStatus = document.getElementById("reload-status");
    reload.addEventListener("click", async () => {
      reload.disabled = true;
      try {
        await post("/api/rules/reload");
        window.location.reload();
      } catch (err) {
        reload.disabled = false;
        const problems = (err.body && err.body.problems) || [];
        fill(reloadStatus, el("span", { class: "error", id: "reload-error" }, err.message),
          el("ul", { id: "reload-problems" }, problems.map((p) => el("li", { class: "mono" }, p))));
      }
    });
  }

  // -- the pattern tester
  const patternForm = document.getElementById("pattern-form");
  const result = document.getElementById("pattern-result");
  patternForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const words = result.dataset;
    fill(result, "…");
    try {
      const answer = await post("/alarms/test-pattern", {
        pattern: patternForm.elements.pattern.value, event: patternForm.elements.event.value,
      });
      const verdict = el("p", {}, `${words.result}: `,
        el("strong", { id: "pattern-verdict", class: answer.Result ? "state-OK" : "state-ALARM" }, String(answer.Result)));
      const details = answer.Result
        ? [el("h4", {}, words.matched), el("ul", { id: "matched-fields" }, answer.matched.map((m) =>
            el("li", { class: "mono" }, `${m.field}: ${JSON.stringify(m.values)} ∈ ${m.pattern}`)))]
        : [el("h4", {}, words.reasons), el("ul", { id: "pattern-reasons" }, answer.reasons.map((r) => el("li", { class: "mono" }, r)))];
      fill(result, verdict, details);
    } catch (err) {
      fill(result, el("p", { class: "error", id: "pattern-error" }, `${words.error}: ${err.message}`));
    }
  });
});
