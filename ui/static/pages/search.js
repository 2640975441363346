// The search page. Its state (query, sort, dates, page) lives in the URL, so a link, the back
// button, or signing in again after the session ended shows the same results.
import {
  $, api, ApiError, clear, fmtDate, fmtNumber, h, marked, may, notify, showError, t,
} from "/ui/static/app.js";

const PAGE_SIZE = 20;
const MAX_PAGED = 10000; // beyond this the archive pages with a cursor (deep results)
const form = $("#search-form");
const box = $("#q");

// a facet's value, as the query language clause that narrows to it
const FACETS = {
  tags: (v) => `tag:${quoted(v)}`,
  departments: (v) => `department:${quoted(v)}`,
  sender_domains: (v) => `from:${quoted(v)}`,
  dates: (v) => `date:${v}`,
  has_attachment: (v) => (v === "true" || v === "1" ? "has:attachment" : "-has:attachment"),
  sources: (v) => `source:${quoted(v)}`,
};

function quoted(value) {
  return /^[^\s"():]+$/.test(value) ? value : `"${value.replaceAll('"', "")}"`;
}

function state() {
  const url = new URLSearchParams(location.search);
  return {
    q: url.get("q") || "",
    sort: url.get("sort") || "relevance",
    from: url.get("from") || "",
    to: url.get("to") || "",
    words: url.get("match") === "words",
    page: Math.max(1, Number(url.get("page")) || 1),
    cursor: url.get("cursor") || "",
  };
}

function go(changes, push = true) {
  const next = { ...state(), page: 1, cursor: "", ...changes };
  const url = new URLSearchParams();
  if (next.q) url.set("q", next.q);
  if (next.sort !== "relevance") url.set("sort", next.sort);
  if (next.from) url.set("from", next.from);
  if (next.to) url.set("to", next.to);
  if (next.words) url.set("match", "words");
  if (next.page > 1) url.set("page", String(next.page));
  if (next.cursor) url.set("cursor", next.cursor);
  const target = `${location.pathname}?${url}`;
  if (push) history.pushState(null, "", target);
  else history.replaceState(null, "", target);
  load();
}

// the date range as a clause of the query language (dates are in the archive's time zone)
function withDates(s) {
  if (!s.from && !s.to) return s.q;
  const range = `date:${s.from || "1970-01-01"}..${s.to || "9999-12-31"}`;
  return s.q ? `(${s.q}) ${range}` : range;
}

function fill(s) {
  box.value = s.q;
  form.elements.sort.value = s.sort;
  form.elements.from_date.value = s.from;
  form.elements.to_date.value = s.to;
  form.elements.words.checked = s.words;
}

let latest = 0; // only the newest request's answer is shown, however the answers arrive

async function load() {
  const generation = ++latest;
  const s = state();
  fill(s);
  $("#query-problem").hidden = true;
  $("#total").textContent = t("common.loading");
  try {
    const result = await api("GET", "/api/search", {
      query: {
        q: withDates(s),
        sort: s.sort,
        size: PAGE_SIZE,
        page: s.cursor ? undefined : s.page,
        cursor: s.cursor || undefined,
        facets: "true",
        match: s.words ? "words" : "span",
      },
    });
    if (generation === latest) show(result, s);
  } catch (error) {
    if (generation !== latest) return;
    if (error instanceof ApiError && error.status === 400) return problem(s.q, error);
    $("#total").textContent = "";
    showError(error);
  }
}

// a parser error, shown at its position in the query the reader typed
function problem(query, error) {
  const position = error.body.position;
  const echo = $("#query-echo");
  if (typeof position === "number") {
    clear(
      echo,
      query.slice(0, position),
      h("mark", { class: "at" }, query.slice(position, position + 1) || " "),
      query.slice(position + 1),
    );
    box.focus();
    box.setSelectionRange(position, Math.min(query.length, position + 1));
  } else {
    clear(echo, query);
  }
  $("#query-message").textContent = error.message;
  $("#query-problem").hidden = false;
  $("#total").textContent = "";
  clear($("#results"));
  clear($("#pager"));
}

function show(result, s) {
  $("#total").textContent = t("search.total", { n: fmtNumber(result.total) });
  const note = $("#query-note");
  note.hidden = result.interpreted_as !== "text";
  note.textContent = result.interpreted_as === "text" ? t("search.read_as_text") : "";
  clear($("#results"), result.hits.map(hit));
  if (!result.hits.length) $("#results").append(h("li", { class: "empty" }, t("search.no_results")));
  facets(result.facets || {}, s);
  pager(result, s);
  // bench/ui.py times a page from navigation to here: results, facets and pager on screen
  performance.mark("mv-results-shown");
}

function hit(item) {
  const link = h("a", { href: `/ui/messages/${item.id}`, class: "subject" },
    item.subject_highlight ? marked(item.subject_highlight) : item.subject || t("search.no_subject"));
  return h("li", { "data-item": "", tabindex: "0", class: "hit" },
    h("div", { class: "hit-head" },
      link,
      item.has_attachment ? h("span", { class: "clip", title: t("search.has_attachment"), "aria-label": t("search.has_attachment") }, "📎") : null,
      h("time", { datetime: item.date || "" }, fmtDate(item.date))),
    h("div", { class: "sender" }, item.from),
    h("p", { class: "snippet" }, marked(item.snippet || item.attachment_snippet)),
    item.tags.length ? h("ul", { class: "tags" }, item.tags.map((tag) => h("li", {}, tag))) : null);
}

function facets(groups, s) {
  const panel = $("#facets");
  clear(panel);
  for (const [name, clause] of Object.entries(FACETS)) {
    const values = groups[name] || [];
    if (!values.length) continue;
    panel.append(h("section", { class: "facet" },
      h("h2", {}, t(`search.facet_${name}`)),
      h("ul", {}, values.map((v) => {
        const term = clause(v.value);
        const active = s.q.split(/\s+/).includes(term);
        const label = name === "has_attachment"
          ? t(term === "has:attachment" ? "search.with_attachment" : "search.without_attachment")
          : v.value;
        return h("li", {},
          h("button", {
            type: "button", class: active ? "facet-value active" : "facet-value",
            "aria-pressed": active ? "true" : "false",
            onclick: () => go({ q: active ? s.q.split(/\s+/).filter((x) => x !== term).join(" ") : `${s.q} ${term}`.trim() }),
          }, h("span", {}, label), h("span", { class: "count" }, fmtNumber(v.count))));
      }))));
  }
}

function pager(result, s) {
  const nav = $("#pager");
  clear(nav);
  const pages = Math.ceil(Math.min(result.total, MAX_PAGED) / PAGE_SIZE);
  if (s.cursor) {
    nav.append(h("button", { type: "button", onclick: () => history.back() }, t("common.previous")));
    if (result.next_cursor && result.hits.length === PAGE_SIZE) {
      nav.append(h("button", { type: "button", onclick: () => go({ cursor: result.next_cursor }) }, t("common.next")));
    }
    return;
  }
  if (s.page > 1) nav.append(h("button", { type: "button", onclick: () => go({ page: s.page - 1 }) }, t("common.previous")));
  nav.append(h("span", { class: "page-of" }, t("search.page_of", { page: fmtNumber(s.page), pages: fmtNumber(Math.max(1, pages)) })));
  if (s.page < pages) {
    nav.append(h("button", { type: "button", onclick: () => go({ page: s.page + 1 }) }, t("common.next")));
  } else if (result.total > MAX_PAGED) {
    // past what from/size can reach: walk on with a cursor from the start of the results
    nav.append(h("button", { type: "button", onclick: () => deep(s) }, t("search.walk_on")));
  }
}

async function deep(s) {
  const first = await api("GET", "/api/search", {
    query: { q: withDates(s), sort: s.sort === "relevance" ? "date" : s.sort, size: PAGE_SIZE, cursor: "*" },
  });
  if (first.next_cursor) go({ cursor: first.next_cursor, sort: s.sort === "relevance" ? "date" : s.sort });
}

async function savedSearches() {
  if (!may("search")) return;
  const list = $("#saved-searches");
  try {
    const saved = await api("GET", "/api/saved-searches");
    clear(list, saved.length ? h("span", { class: "label" }, t("search.saved")) : null,
      saved.map((item) => h("a", { href: `?q=${encodeURIComponent(item.query)}`, class: "saved-search", title: item.query }, item.name)));
  } catch (error) {
    showError(error);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  go({
    q: box.value.trim(),
    sort: form.elements.sort.value,
    from: form.elements.from_date.value,
    to: form.elements.to_date.value,
    words: form.elements.words.checked,
  });
});
for (const name of ["sort", "words"]) form.elements[name].addEventListener("change", () => form.requestSubmit());
for (const example of document.querySelectorAll("[data-example]")) {
  example.addEventListener("click", () => go({ q: example.dataset.example }));
}
$("#save-search").addEventListener("click", async () => {
  const query = box.value.trim();
  if (!query) return notify(t("search.save_needs_query"), "error");
  const name = prompt(t("search.save_name"), query.slice(0, 60));
  if (!name) return;
  try {
    await api("PUT", "/api/saved-searches", { body: { name, query } });
    notify(t("common.saved"));
    savedSearches();
  } catch (error) {
    showError(error);
  }
});
window.addEventListener("popstate", load);

load();
savedSearches();
