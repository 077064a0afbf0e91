/* ecsguard console: the helpers every page script uses.
 *
 * Text from logs and AWS is untrusted: it reaches the page only through textContent (el() below),
 * never innerHTML. Page data comes from the JSON block the server writes, or the page's JSON twin.
 */
"use strict";

window.ecsguard = (() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";

  /** The page's data, as the server rendered it. */
  function pageData() {
    const block = document.getElementById("page-data");
    return block ? JSON.parse(block.textContent) : {};
  }

  /** An element with attributes and children; strings become text nodes, never markup. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Replace a node's children. */
  function fill(node, ...children) {
    node.replaceChildren();
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  /** A JSON request with the session's CSRF token; throws Error(message) on a non-2xx answer,
   *  with the answer's JSON as its `body`. */
  async function request(method, url, body) {
    const init = { method, headers: { "X-CSRF-Token": meta("csrf-token"), "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const reply = await fetch(url, init);
    const text = await reply.text();
    let value = null;
    try { value = text ? JSON.parse(text) : null; } catch (_) { value = { error: text }; }
    if (!reply.ok) {
      const err = new Error((value && value.error) || `${reply.status} ${reply.statusText}`);
      err.body = value;
      throw err;
    }
    return value;
  }

  const get = (url) => request("GET", url);
  const post = (url, body) => request("POST", url, body ?? {});

  /** Bar paths; two series stand side by side (uPlot's `align`), more share the slot. */
  function bars(index, count) {
    if (count === 2) return uPlot.paths.bars({ size: [0.35, 40], align: index === 0 ? -1 : 1 });
    return uPlot.paths.bars({ size: [0.8 / Math.max(count, 1), 60] });
  }

  /** A chart (uPlot): x in epoch seconds, series [{label, values, color?}]. Options: height,
   *  bars, fill, legend, onSelect(from, to) for a dragged range, categories (names for x = 0..n-1,
   *  instead of time). */
  function chart(container, x, series, options = {}) {
    const width = Math.max(container.clientWidth || 600, 300);
    const palette = ["#0b63c5", "#c62828", "#2f7d32", "#d97706", "#6a3fb5", "#00838f"];
    const opts = {
      width, height: options.height || 180,
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color || palette[i % palette.length], width: 1.5, fill: options.fill || options.bars ? (s.color || palette[i % palette.length]) + (options.bars ? "bb" : "22") : undefined, paths: options.bars ? bars(i, series.length) : undefined }))],
      scales: options.categories ? { x: { time: false, range: [-0.5, options.categories.length - 0.5] } } : {},
      axes: [options.categories ? { splits: () => options.categories.map((_, i) => i), values: () => options.categories } : {}, { size: 50 }],
      legend: { show: series.length > 1 || !!options.legend },
      cursor: { drag: { x: !!options.onSelect, y: false } },
      hooks: options.onSelect ? { setSelect: [(u) => {
        if (u.select.width > 2) options.onSelect(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
      }] } : {},
    };
    container.replaceChildren();
    return new uPlot(opts, [x, ...series.map((s) => s.values)], container);
  }

  const lang = () => meta("lang") || "en";
  function formatTime(value) {
    if (value === null || value === undefined || value === "") return "";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(lang() === "ja" ? "ja-JP" : "en-GB", { hour12: false });
  }

  return { pageData, el, fill, request, get, post, chart, formatTime, lang, meta };
})();
