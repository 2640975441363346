// The audit page: the chain's verification first (it is what an auditor must trust before
// reading on), then the log filtered and paged, with exports of the same filter. Its state is
// in the URL, so a link or signing in again shows the same records.
import {
  $, api, boot, clear, fmtDate, fmtNumber, h, showError, t,
} from "/ui/static/app.js";
import { zonedToIso } from "/ui/static/pages/audit-lib.js";

const PAGE_SIZE = 50;
const MAX_PAGE = 10000; // the API pages at most this far
const FIELDS = ["actor", "action", "target", "outcome", "since", "until"];
const form = $("#audit-form");

function state() {
  const url = new URLSearchParams(location.search);
  const s = { page: Math.max(1, Number(url.get("page")) || 1) };
  for (const name of FIELDS) s[name] = url.get(name) || "";
  return s;
}

function go(changes) {
  const next = { ...state(), page: 1, ...changes };
  const url = new URLSearchParams();
  for (const name of FIELDS) if (next[name]) url.set(name, next[name]);
  if (next.page > 1) url.set("page", String(next.page));
  history.pushState(null, "", `${location.pathname}?${url}`);
  load();
}

// the filter as the API's query (times from the display time zone to instants)
function filters(s) {
  return {
    actor: s.actor,
    action: s.action,
    target: s.target,
    outcome: s.outcome,
    since: zonedToIso(s.since, boot.tz),
    until: zonedToIso(s.until, boot.tz),
  };
}

function fill(s) {
  for (const name of FIELDS) form.elements[name].value = s[name];
}

function exportLinks(s) {
  const query = Object.entries(filters(s)).filter(([, v]) => v);
  for (const link of document.querySelectorAll("a.export")) {
    const url = new URLSearchParams([["format", link.dataset.format], ...query]);
    link.href = `/api/audit/export?${url}`;
  }
}

let latest = 0;

async function load() {
  const generation = ++latest;
  const s = state();
  fill(s);
  exportLinks(s);
  $("#audit-total").textContent = t("common.loading");
  try {
    const found = await api("GET", "/api/audit", { query: { ...filters(s), page: s.page, size: PAGE_SIZE } });
    if (generation === latest) show(found, s);
  } catch (error) {
    if (generation !== latest) return;
    $("#audit-total").textContent = "";
    showError(error);
  }
}

function show(found, s) {
  $("#audit-total").textContent = t("audit.total", { n: fmtNumber(found.total) });
  const rows = $("#audit-rows");
  clear(rows, found.records.map(row));
  if (!found.records.length) rows.append(h("tr", {}, h("td", { colspan: "7", class: "empty" }, t("audit.no_records"))));
  pager(found, s);
}

// a value that narrows the filter to itself when clicked
function narrowing(field, value, label) {
  if (!value) return "—";
  return h("button", {
    type: "button", class: "link narrow", title: t("audit.narrow"),
    onclick: () => go({ [field]: value }),
  }, label || value);
}

function row(record) {
  const details = Object.keys(record.details || {}).length
    ? h("details", {}, h("summary", {}, t("audit.show_details")),
      h("pre", {}, JSON.stringify(record.details, null, 2)))
    : null;
  return h("tr", { dataset: { seq: record.seq, actor: record.actor, action: record.action } },
    h("td", { class: "num" }, String(record.seq)),
    h("td", {}, h("time", { datetime: record.time }, fmtDate(record.time))),
    h("td", {}, narrowing("actor", record.actor),
      record.client ? h("div", { class: "hint" }, record.client) : null),
    h("td", {}, narrowing("action", record.action, t(`audit.action_${record.action}`))),
    h("td", { class: "target" }, narrowing("target", record.target)),
    h("td", {}, h("span", { class: record.outcome === "success" ? "badge good" : "badge bad" },
      t(`audit.outcome_${record.outcome}`))),
    h("td", {}, details));
}

function pager(found, s) {
  const nav = $("#audit-pager");
  const pages = Math.min(MAX_PAGE, Math.max(1, Math.ceil(found.total / PAGE_SIZE)));
  clear(nav,
    s.page > 1 ? h("button", { type: "button", onclick: () => go({ page: s.page - 1 }) }, t("common.previous")) : null,
    h("span", { class: "page-of" }, t("audit.page_of", { page: fmtNumber(s.page), pages: fmtNumber(pages) })),
    s.page < pages ? h("button", { type: "button", onclick: () => go({ page: s.page + 1 }) }, t("common.next")) : null);
}

async function verify() {
  const box = $("#chain");
  const status = $("#chain-status");
  const issues = $("#chain-issues");
  box.classList.remove("intact", "broken");
  status.textContent = t("audit.verifying");
  issues.hidden = true;
  $("#verify-again").disabled = true;
  try {
    const report = await api("GET", "/api/audit/verify");
    if (!report.issues.length) {
      box.classList.add("intact");
      status.textContent = t("audit.chain_intact", {
        n: fmtNumber(report.head), records: fmtNumber(report.records), segments: fmtNumber(report.segments),
      });
    } else {
      const seqs = report.issues.flatMap((issue) => issue.seqs);
      const first = seqs.length ? Math.min(...seqs) : report.head;
      box.classList.add("broken");
      status.textContent = t("audit.chain_broken", {
        n: fmtNumber(first), issues: fmtNumber(report.issues.length), records: fmtNumber(report.records),
      });
      clear(issues, report.issues.map((issue) => h("li", {},
        h("strong", {}, t(`audit.issue_${issue.kind}`)), " ",
        issue.seqs.length ? t("audit.issue_seqs", { seqs: issue.seqs.join(", ") }) : null, " ",
        h("span", { class: "hint" }, issue.detail))));
      issues.hidden = false;
    }
  } catch (error) {
    status.textContent = t("audit.verify_failed");
    showError(error);
  } finally {
    $("#verify-again").disabled = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const changes = {};
  for (const name of FIELDS) changes[name] = form.elements[name].value.trim();
  go(changes);
});
for (const name of ["action", "outcome"]) form.elements[name].addEventListener("change", () => form.requestSubmit());
$("#clear-filters").addEventListener("click", () => go(Object.fromEntries(FIELDS.map((f) => [f, ""]))));
$("#verify-again").addEventListener("click", verify);
window.addEventListener("popstate", load);

verify();
load();
