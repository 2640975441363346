// A department lead's home: for each department they may read, its tags as a tree and its mail
// by month, every count a link to the search it stands for. The counts come from the search
// API's facets, which count only the mail the reader may search.
import { $, api, clear, fmtNumber, h, showError, t, user } from "/ui/static/app.js";

const MONTHS_SHOWN = 12;

function quoted(value) {
  return `"${value.replaceAll('"', "")}"`;
}

function searchLink(query, label, count) {
  return h("a", { href: `/ui/search?q=${encodeURIComponent(query)}`, class: "count-link" },
    h("span", {}, label), h("span", { class: "count" }, fmtNumber(count)));
}

async function facetsOf(query) {
  return api("GET", "/api/search", { query: { q: query, size: 1, facets: "true" } });
}

// tags as a tree by their path segments (project/凤凰/合同 → project › 凤凰 › 合同)
function tagTree(department, tags) {
  const root = new Map();
  for (const { value, count } of tags) {
    let level = root;
    const parts = value.split("/");
    parts.forEach((segment, i) => {
      if (!level.has(segment)) level.set(segment, { children: new Map(), tag: null, count: 0 });
      const node = level.get(segment);
      if (i === parts.length - 1) Object.assign(node, { tag: value, count });
      level = node.children;
    });
  }
  const scope = `department:${quoted(department)}`;
  const render = (level) => h("ul", { class: "tree" }, [...level.entries()].map(([segment, node]) =>
    h("li", {},
      node.tag ? searchLink(`${scope} tag:${quoted(node.tag)}`, segment, node.count) : h("span", { class: "branch" }, segment),
      node.children.size ? render(node.children) : null)));
  return render(root);
}

function months(department, dates) {
  const recent = dates.slice(-MONTHS_SHOWN);
  const most = Math.max(1, ...recent.map((d) => d.count));
  return h("ol", { class: "months" }, recent.map(({ value, count }) =>
    h("li", {},
      searchLink(`department:${quoted(department)} date:${value}`, value, count),
      h("meter", { min: "0", max: String(most), value: String(count), "aria-label": t("departments.month_share", { month: value }) }))));
}

async function department(name, total) {
  const result = await facetsOf(`department:${quoted(name)}`);
  const tags = (result.facets.tags || []).filter((tag) => tag.value !== `department/${name}`);
  return h("section", { class: "card department", "data-department": name },
    h("h2", {}, searchLink(`department:${quoted(name)}`, name, total)),
    h("div", { class: "department-body" },
      h("div", {}, h("h3", {}, t("departments.tags")),
        tags.length ? tagTree(name, tags) : h("p", { class: "empty" }, t("departments.no_tags"))),
      h("div", {}, h("h3", {}, t("departments.by_month")),
        (result.facets.dates || []).length ? months(name, result.facets.dates) : h("p", { class: "empty" }, t("common.none")))));
}

async function load() {
  try {
    const all = await facetsOf("");
    // a lead's own departments first, as they are named in their account; then any other the
    // archive shows them (a reader of the whole archive sees every department)
    const counts = new Map((all.facets.departments || []).map((d) => [d.value, d.count]));
    const names = [...new Set([...(user.departments || []).map((d) => d.toLowerCase()), ...counts.keys()])]
      .filter((name) => counts.has(name));
    $("#departments-total").textContent = names.length
      ? t("departments.total", { n: fmtNumber(names.length), messages: fmtNumber(all.total) })
      : t("departments.none");
    clear($("#departments"), await Promise.all(names.map((name) => department(name, counts.get(name)))));
  } catch (error) {
    $("#departments-total").textContent = "";
    showError(error);
  }
}

load();
