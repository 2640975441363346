// Small builders the retention page shares with pages that show counts (candidates for app.js).
import { fmtNumber, h } from "/ui/static/app.js";

// "a, b ,c" → ["a", "b", "c"]; Chinese commas too
export function listOf(text) {
  return text.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
}

// a table of counts, largest first (months in order), with a caption; `label` names a key
export function breakdown(caption, [heading, countHeading], counts, id, label = (key) => key) {
  const entries = Object.entries(counts || {});
  const byMonth = entries.every(([key]) => /^\d{4}-\d{2}$/.test(key));
  entries.sort(byMonth ? (a, b) => a[0].localeCompare(b[0]) : (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return h("table", { class: "breakdown", id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, heading), h("th", { scope: "col", class: "num" }, countHeading))),
    h("tbody", {}, entries.map(([key, n]) =>
      h("tr", { dataset: { key } }, h("td", {}, label(key)), h("td", { class: "num" }, fmtNumber(n))))));
}

const GOOD = new Set(["done", "approved", "dry_run"]);
const BAD = new Set(["cancelled"]);

export function statusBadge(status, label) {
  const kind = GOOD.has(status) ? " good" : BAD.has(status) ? " bad" : "";
  return h("span", { class: `badge${kind}` }, label);
}
