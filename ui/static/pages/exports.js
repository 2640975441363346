// The exports page: the reader's exports (status, progress, expiry) and a new export of a search.
import { $, api, ApiError, clear, fmtDate, fmtNumber, h, showError, t } from "/ui/static/app.js";
import { FINISHED, progressBar, progressText, statusBadge } from "/ui/static/pages/exports-lib.js";

const form = $("#export-form");
const rows = $("#export-rows");
let timer = 0;

async function load() {
  clearTimeout(timer);
  try {
    const jobs = await api("GET", "/api/exports");
    show(jobs);
    // while any is being built the list follows it, as the export's own page does
    if (jobs.some((job) => !FINISHED.has(job.status))) timer = setTimeout(load, 2000);
  } catch (error) {
    $("#exports-count").textContent = "";
    showError(error);
  }
}

function show(jobs) {
  $("#exports-count").textContent = t("exports.count", { n: fmtNumber(jobs.length) });
  const ordered = [...jobs].sort((a, b) => (a.requested_at < b.requested_at ? 1 : -1));
  clear(rows, ordered.map(row));
  if (!ordered.length) rows.append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, t("exports.empty"))));
}

function row(job) {
  const what = job.request.kind === "matter"
    ? t("exports.of_matter", { matter: job.request.matter })
    : job.request.kind === "query" ? job.request.query : t("exports.of_ids", { n: fmtNumber(job.request.ids.length) });
  return h("tr", { "data-item": "", tabindex: "0", class: "export-row", dataset: { export: job.id } },
    h("td", {},
      h("a", { href: `/ui/exports/${job.id}` }, job.request.name),
      h("div", { class: "hint" }, `${job.request.format.toUpperCase()} · ${what}`)),
    h("td", {}, statusBadge(job)),
    h("td", {}, progressBar(job), h("div", { class: "hint" }, progressText(job))),
    h("td", {}, h("time", { datetime: job.requested_at }, fmtDate(job.requested_at))),
    h("td", {}, job.expires_at ? h("time", { datetime: job.expires_at }, fmtDate(job.expires_at)) : "—"));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = form.elements;
  const body = {
    name: fields.name.value.trim(),
    kind: "query",
    query: fields.query.value.trim(),
    format: fields.format.value,
    pdf: fields.pdf.checked,
    load_file: fields.load_file.checked,
  };
  const shown = $("#export-problem");
  shown.hidden = true;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const job = await api("POST", "/api/exports", { body });
    form.reset();
    location.assign(`/ui/exports/${job.id}`);
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && (error.status === 400 || error.status === 422)) {
      const position = error.body.position;
      shown.textContent = typeof position === "number"
        ? t("exports.query_problem", { position: position + 1, message: error.message })
        : error.message;
      shown.hidden = false;
    } else {
      showError(error);
    }
  }
});

load();
