// The matters page: every matter (a case), and a new one.
import { $, api, clear, fmtDate, fmtNumber, h, notify, showError, t } from "/ui/static/app.js";
import { listOf } from "/ui/static/pages/matters-lib.js";

const form = $("#matter-form");
const rows = $("#matter-rows");

async function load() {
  $("#matters-count").textContent = t("common.loading");
  try {
    const matters = await api("GET", "/api/matters");
    show(matters);
  } catch (error) {
    $("#matters-count").textContent = "";
    showError(error);
  }
}

function show(matters) {
  $("#matters-count").textContent = t("matters.count", { n: fmtNumber(matters.length) });
  // newest first: the matter being worked on is usually the latest
  const ordered = [...matters].reverse();
  clear(rows, ordered.map(row));
  if (!ordered.length) rows.append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, t("matters.empty"))));
}

function row(matter) {
  const holds = Object.values(matter.holds || {});
  const active = holds.filter((hold) => hold.status === "active").length;
  return h("tr", { "data-item": "", tabindex: "0", class: "matter-row" },
    h("td", {}, h("a", { href: `/ui/matters/${matter.id}`, class: "matter-link" }, matter.name)),
    h("td", {}, matter.case_number || "—"),
    h("td", {}, h("span", { class: `badge ${matter.status === "open" ? "good" : ""}` }, t(`matters.status_${matter.status}`))),
    h("td", {}, t("matters.holds_active", { active: fmtNumber(active), n: fmtNumber(holds.length) })),
    h("td", {}, h("time", { datetime: matter.created_at }, fmtDate(matter.created_at))));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = form.elements;
  const body = {
    name: fields.name.value.trim(),
    case_number: fields.case_number.value.trim(),
    description: fields.description.value.trim(),
    owners: listOf(fields.owners.value),
  };
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const matter = await api("POST", "/api/matters", { body });
    form.reset();
    notify(t("matters.created_notice", { name: matter.name }));
    location.assign(`/ui/matters/${matter.id}`);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
});

load();
