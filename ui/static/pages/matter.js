// One matter: its holds (what each covers, held now), a new hold with a live count of what it
// would cover, releasing a hold (a reason is required), and exporting the matter.
import {
  $, api, ApiError, clear, fmtDate, fmtNumber, h, may, notify, params, showError, t,
} from "/ui/static/app.js";
import { debounced, listOf } from "/ui/static/pages/matters-lib.js";

const matterId = params.matter_id;
const holdForm = $("#hold-form");
const releaseForm = $("#release-form");
const exportForm = $("#export-form");
let matter = null;
let releasing = null; // the hold being released
let following = 0; // a timer: the held counts followed while a recompute applies a change
const FOLLOW_MS = 2000;

async function load() {
  $("#holds-count").textContent = t("common.loading");
  try {
    const detail = await api("GET", `/api/matters/${matterId}`);
    show(detail);
  } catch (error) {
    $("#holds-count").textContent = "";
    showError(error);
  }
}

function show(detail) {
  matter = detail.matter;
  document.title = `${matter.name} · ${t("common.product")}`;
  $("#matter-name").textContent = matter.name;
  clear($("#matter-fields"),
    field(t("matter.case_number"), matter.case_number || "—"),
    field(t("matter.status"), t(`matters.status_${matter.status}`)),
    field(t("matter.description"), matter.description || "—"),
    field(t("matter.owners"), (matter.owners || []).join(", ") || "—"),
    field(t("matter.created"), `${fmtDate(matter.created_at)} · ${matter.created_by}`));
  const counts = Object.fromEntries(detail.counts.map((c) => [c.hold, c]));
  const holds = Object.values(matter.holds);
  const active = holds.filter((hold) => hold.status === "active");
  $("#holds-count").textContent = t("matter.holds_count", { active: fmtNumber(active.length), n: fmtNumber(holds.length) });
  clear($("#hold-rows"), holds.map((hold) => row(hold, counts[hold.id])));
  if (!holds.length) $("#hold-rows").append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, t("matter.no_holds"))));
  follow(detail.counts);
  const open = matter.status === "open";
  holdForm.hidden = !open;
  exportForm.hidden = !may("export") || !active.length;
}

// A hold added or released is applied to the archived mail in the background: until each
// active hold holds what it matches (and a released one holds nothing), ask again now and then
// and update the counts in place, leaving the rest of the page (and a form being filled) alone.
function settled(counts) {
  return counts.every((c) => (c.status === "active" ? c.held === c.matching : c.held === 0));
}

function follow(counts) {
  clearTimeout(following);
  if (settled(counts)) return;
  following = setTimeout(async () => {
    try {
      const detail = await api("GET", `/api/matters/${matterId}`);
      for (const count of detail.counts) {
        const cell = document.querySelector(`.held[data-hold="${count.hold}"]`);
        if (cell) cell.textContent = heldText(count);
      }
      follow(detail.counts);
    } catch (error) {
      showError(error);
    }
  }, FOLLOW_MS);
}

function heldText(count) {
  return count.status === "active"
    ? t("matter.held_matching", { held: fmtNumber(count.held), matching: fmtNumber(count.matching) })
    : fmtNumber(count.held);
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function criteria(hold) {
  const people = hold.custodians || {};
  const parts = [];
  if (people.addresses && people.addresses.length) parts.push([t("matter.addresses"), people.addresses.join(", ")]);
  if (people.users && people.users.length) parts.push([t("matter.users"), people.users.join(", ")]);
  if (people.departments && people.departments.length) parts.push([t("matter.departments"), people.departments.join(", ")]);
  if (hold.query) parts.push([t("matter.query"), h("code", {}, hold.query)]);
  if (hold.sent_after || hold.sent_before) {
    parts.push([t("matter.dates"), `${hold.sent_after || "…"} – ${hold.sent_before || "…"}`]);
  }
  return h("dl", { class: "criteria" }, parts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function row(hold, count) {
  const active = hold.status === "active";
  const status = active
    ? h("span", { class: "badge good" }, t("matter.hold_active"))
    : h("div", {},
      h("span", { class: "badge" }, t("matter.hold_released")),
      h("p", { class: "hint released" },
        t("matter.released_by", { who: hold.released_by, when: fmtDate(hold.released_at) })),
      h("p", { class: "release-reason" }, hold.release_reason));
  const held = count ? h("span", { class: "held", dataset: { hold: hold.id } }, heldText(count)) : "—";
  return h("tr", { class: "hold-row", dataset: { hold: hold.id } },
    h("td", {}, h("strong", {}, hold.name), h("div", { class: "hint" }, `${fmtDate(hold.created_at)} · ${hold.created_by}`)),
    h("td", {}, criteria(hold)),
    h("td", {}, status),
    h("td", {}, held),
    h("td", {}, active && matter.status === "open"
      ? h("button", { type: "button", class: "danger release-hold", onclick: () => startRelease(hold) }, t("matter.release"))
      : null));
}

function startRelease(hold) {
  releasing = hold;
  $("#release-title").textContent = t("matter.release_title", { name: hold.name });
  releaseForm.hidden = false;
  releaseForm.elements.reason.value = "";
  releaseForm.elements.reason.focus();
}

$("#release-cancel").addEventListener("click", () => {
  releasing = null;
  releaseForm.hidden = true;
});

releaseForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const reason = releaseForm.elements.reason.value.trim();
  if (!reason) {
    notify(t("matter.reason_required"), "error");
    releaseForm.elements.reason.focus();
    return;
  }
  try {
    await api("POST", `/api/holds/${releasing.id}/release`, { body: { reason } });
    notify(t("matter.released_notice", { name: releasing.name }));
    releasing = null;
    releaseForm.hidden = true;
    await load();
  } catch (error) {
    showError(error);
  }
});

// the hold form's criteria, as the API takes them
function holdCriteria() {
  const fields = holdForm.elements;
  const body = {
    custodians: {
      addresses: listOf(fields.addresses.value),
      users: listOf(fields.users.value),
      departments: listOf(fields.departments.value),
    },
    query: fields.query.value.trim(),
  };
  if (fields.sent_after.value) body.sent_after = fields.sent_after.value;
  if (fields.sent_before.value) body.sent_before = fields.sent_before.value;
  return body;
}

function namesSomething(body) {
  const people = body.custodians;
  return Boolean(body.query || people.addresses.length || people.users.length || people.departments.length);
}

function problem(error) {
  const shown = $("#hold-problem");
  if (!error) {
    shown.hidden = true;
    shown.textContent = "";
    return;
  }
  const position = error instanceof ApiError ? error.body.position : undefined;
  shown.textContent = typeof position === "number"
    ? t("matter.query_problem", { position: position + 1, message: error.message })
    : error.message;
  shown.hidden = false;
}

let latest = 0; // only the newest count is shown, however the answers arrive

async function count() {
  const generation = ++latest;
  const body = holdCriteria();
  const shown = $("#hold-count");
  if (!namesSomething(body)) {
    shown.textContent = t("matter.count_needs");
    problem(null);
    return;
  }
  shown.textContent = t("matter.counting");
  try {
    const preview = await api("POST", "/api/holds/preview", { body });
    if (generation !== latest) return;
    problem(null);
    shown.dataset.matching = String(preview.matching);
    shown.textContent = t("matter.would_cover", { n: fmtNumber(preview.matching) });
  } catch (error) {
    if (generation !== latest) return;
    delete shown.dataset.matching;
    shown.textContent = "";
    if (error instanceof ApiError && (error.status === 400 || error.status === 422)) problem(error);
    else showError(error);
  }
}

const countSoon = debounced(count, 400);
holdForm.addEventListener("input", countSoon);
holdForm.addEventListener("change", countSoon);

holdForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: holdForm.elements.name.value.trim(), ...holdCriteria() };
  if (!namesSomething(body)) {
    problem(new Error(t("matter.count_needs")));
    return;
  }
  const button = holdForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const hold = await api("POST", `/api/matters/${matterId}/holds`, { body });
    countSoon.cancel();
    latest += 1; // a count still on its way is of the criteria just sent
    holdForm.reset();
    $("#hold-count").textContent = "";
    problem(null);
    notify(t("matter.hold_added", { name: hold.name }));
    await load();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 400 || error.status === 422)) problem(error);
    else showError(error);
  } finally {
    button.disabled = false;
  }
});

exportForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#export-matter");
  button.disabled = true;
  try {
    const job = await api("POST", "/api/exports", {
      body: { name: matter.name, kind: "matter", matter: matterId, format: exportForm.elements.format.value },
    });
    location.assign(`/ui/exports/${job.id}`);
  } catch (error) {
    showError(error);
    button.disabled = false;
  }
});

load().then(() => {
  // a draft brought back after signing in again gets its count at once
  if (namesSomething(holdCriteria())) count();
});
