// The retention page: policies (each save is a new version), a draft's dry-run preview that
// must be seen before the draft can be saved, and disposition runs with their second-person
// approval. Every call goes to the audited /api/retention routes.
import {
  $, api, clear, fmtDate, fmtNumber, h, notify, showError, t, user,
} from "/ui/static/app.js";
import { breakdown, listOf, statusBadge } from "/ui/static/pages/retention-lib.js";

const form = $("#policy-form");
const editor = $("#editor");
const saveButton = $("#save-policy");
const preview = $("#preview");
const POLL_MS = 2000;

// the form's contents when they were last previewed: saving needs a preview of exactly these
let previewed = null;
let dryRunDone = false;
let polling = null;

function draft() {
  const f = form.elements;
  const amount = Number(f.amount.value);
  return {
    name: f.name.value.trim(),
    description: f.description.value.trim(),
    criteria: {
      query: f.query.value.trim(),
      tags: listOf(f.tags.value),
      departments: listOf(f.departments.value),
      sources: listOf(f.sources.value),
    },
    period: f.amount.value ? { amount, unit: f.unit.value } : null,
    basis: f.basis.value,
    action: f.action.value,
  };
}

function fillForm(version) {
  const p = version.policy;
  const f = form.elements;
  f.name.value = version.name;
  f.description.value = p.description || "";
  f.query.value = p.criteria.query || "";
  f.tags.value = (p.criteria.tags || []).join(", ");
  f.departments.value = (p.criteria.departments || []).join(", ");
  f.sources.value = (p.criteria.sources || []).join(", ");
  f.amount.value = p.period ? String(p.period.amount) : "";
  f.unit.value = p.period ? p.period.unit : "years";
  f.basis.value = p.basis;
  f.action.value = p.action;
}

function openEditor(version) {
  form.reset();
  if (version) fillForm(version);
  form.elements.name.readOnly = Boolean(version);
  editor.hidden = false;
  invalidate();
  form.elements[version ? "description" : "name"].focus();
}

function closeEditor() {
  form.reset();
  editor.hidden = true;
  invalidate();
}

function invalidate() {
  previewed = null;
  saveButton.disabled = true;
  preview.hidden = true;
  clear(preview);
}

function describeCriteria(criteria) {
  const parts = [];
  if (criteria.query) parts.push(h("code", {}, criteria.query));
  if (criteria.tags.length) parts.push(t("retention.criteria_tags", { list: criteria.tags.join(", ") }));
  if (criteria.departments.length) {
    parts.push(t("retention.criteria_departments", { list: criteria.departments.join(", ") }));
  }
  if (criteria.sources.length) parts.push(t("retention.criteria_sources", { list: criteria.sources.join(", ") }));
  if (!parts.length) return t("retention.criteria_everything");
  return parts.flatMap((part, i) => (i ? [h("br"), part] : [part]));
}

function describePeriod(policy) {
  if (!policy.period) return t("retention.forever");
  return t(`retention.period_${policy.period.unit}`, {
    n: fmtNumber(policy.period.amount),
    basis: t(`retention.basis_${policy.basis}`),
  });
}

async function loadPolicies() {
  const rows = $("#policy-rows");
  clear(rows, h("tr", {}, h("td", { colspan: "6", class: "hint" }, t("common.loading"))));
  try {
    const versions = await api("GET", "/api/retention/policies");
    clear(rows, versions.filter((v) => v.policy).map(policyRow));
    if (!rows.children.length) rows.append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, t("retention.no_policies"))));
  } catch (error) {
    clear(rows);
    showError(error);
  }
}

function policyRow(version) {
  const p = version.policy;
  return h("tr", { dataset: { policy: version.name } },
    h("td", {}, h("strong", {}, version.name), p.description ? h("div", { class: "hint" }, p.description) : null),
    h("td", {}, describeCriteria(p.criteria)),
    h("td", {}, describePeriod(p)),
    h("td", {}, h("span", { class: p.action === "delete" ? "badge bad" : "badge good" }, t(`retention.action_${p.action}`))),
    h("td", {}, t("retention.version_by", {
      version: version.version, by: version.saved_by || "—", at: fmtDate(version.saved_at),
    })),
    h("td", {}, h("div", { class: "row-actions" },
      h("button", { type: "button", class: "link edit", onclick: () => openEditor(version) }, t("retention.edit")),
      h("button", {
        type: "button", class: "link history", "aria-expanded": "false",
        onclick: (event) => toggleHistory(event.currentTarget, version.name),
      }, t("retention.history")),
      version.name === "default"
        ? null
        : h("button", { type: "button", class: "link delete", onclick: () => deletePolicy(version.name) }, t("common.delete")))));
}

// the policy's versions, oldest first, in a row under its own
async function toggleHistory(button, name) {
  const row = button.closest("tr");
  const open = row.nextElementSibling && row.nextElementSibling.classList.contains("versions");
  if (open) {
    row.nextElementSibling.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  try {
    const versions = await api("GET", `/api/retention/policies/${encodeURIComponent(name)}/versions`);
    row.after(h("tr", { class: "versions", dataset: { versionsOf: name } },
      h("td", { colspan: "6" }, h("ol", { class: "version-list" }, versions.map((v) => h("li", {},
        t("retention.version_by", { version: v.version, by: v.saved_by || "—", at: fmtDate(v.saved_at) }), " — ",
        v.policy
          ? [t(`retention.action_${v.policy.action}`), " · ", describePeriod(v.policy)]
          : t("retention.deleted_version")))))));
    button.setAttribute("aria-expanded", "true");
  } catch (error) {
    showError(error);
  }
}

async function deletePolicy(name) {
  if (!confirm(t("retention.confirm_delete", { name }))) return;
  try {
    const saved = await api("DELETE", `/api/retention/policies/${encodeURIComponent(name)}`);
    notify(t("retention.deleted", { name, version: saved.version }));
    await loadPolicies();
    recomputeStatus();
  } catch (error) {
    showError(error);
  }
}

async function showPreview(event) {
  event.preventDefault();
  const body = draft();
  if (!/^[\w.-]{1,64}$/.test(body.name)) {
    notify(t("retention.name_invalid"), "error");
    form.elements.name.focus();
    return;
  }
  preview.hidden = false;
  clear(preview, h("p", { class: "hint" }, t("retention.previewing")));
  saveButton.disabled = true;
  try {
    const result = await api("POST", "/api/retention/policies/preview", { body });
    previewed = JSON.stringify(body);
    renderPreview(result);
    saveButton.disabled = false;
    preview.scrollIntoView({ block: "nearest" });
  } catch (error) {
    preview.hidden = true;
    showError(error);
  }
}

function renderPreview(result) {
  clear(preview,
    h("h3", {}, t("retention.preview_title", { name: result.policy })),
    h("dl", { class: "fields counts" },
      h("dt", {}, t("retention.scanned")), h("dd", { dataset: { count: "scanned" } }, fmtNumber(result.scanned)),
      h("dt", {}, t("retention.matched")), h("dd", { dataset: { count: "matched" } }, fmtNumber(result.matched)),
      h("dt", {}, t("retention.changed")), h("dd", { dataset: { count: "changed" } }, fmtNumber(result.changed)),
      h("dt", {}, t("retention.longer")), h("dd", { dataset: { count: "longer" } }, fmtNumber(result.longer)),
      h("dt", {}, t("retention.shorter")), h("dd", { dataset: { count: "shorter" } }, fmtNumber(result.shorter)),
      h("dt", {}, t("retention.deletable_now")),
      h("dd", { dataset: { count: "deletable_now" }, class: result.deletable_now ? "error" : null }, fmtNumber(result.deletable_now))),
    result.changed
      ? h("div", { class: "breakdowns" },
        breakdown(t("retention.by_department"), [t("retention.department"), t("retention.count")], result.by_department, "by-department", department),
        breakdown(t("retention.by_month"), [t("retention.month"), t("retention.count")], result.by_month, "by-month"))
      : h("p", { class: "empty" }, t("retention.nothing_changes")),
    result.samples.length
      ? h("details", { class: "samples" },
        h("summary", {}, t("retention.samples", { n: result.samples.length })),
        h("table", {},
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("retention.subject")),
            h("th", { scope: "col" }, t("retention.before")),
            h("th", { scope: "col" }, t("retention.after")))),
          h("tbody", {}, result.samples.map((s) => h("tr", {},
            h("td", {}, s.subject || t("retention.no_subject")),
            h("td", {}, until(s.before), h("div", { class: "hint" }, s.before_policy)),
            h("td", {}, until(s.after), h("div", { class: "hint" }, s.after_policy)))))))
      : null);
}

// the domain counts mail without a department under "(none)"
const department = (key) => (key === "(none)" ? t("retention.no_department") : key);
const until = (iso) => (iso ? fmtDate(iso, false) : t("retention.forever"));

async function savePolicy() {
  const body = draft();
  if (previewed !== JSON.stringify(body)) {
    invalidate();
    notify(t("retention.preview_first"), "error");
    return;
  }
  const { name, ...policy } = body;
  saveButton.disabled = true;
  try {
    const saved = await api("PUT", `/api/retention/policies/${encodeURIComponent(name)}`, { body: policy });
    notify(t("retention.saved", { name: saved.name, version: saved.version }));
    closeEditor();
    await loadPolicies();
    recomputeStatus();
  } catch (error) {
    saveButton.disabled = false;
    showError(error);
  }
}

async function recomputeStatus() {
  const line = $("#recompute-status");
  try {
    const report = await api("GET", "/api/retention/recompute");
    line.textContent = report.status === "done"
      ? t("retention.recompute_done", { at: fmtDate(report.finished_at), changed: fmtNumber(report.changed) })
      : t("retention.recompute_running", { scanned: fmtNumber(report.scanned), total: fmtNumber(report.total) });
    if (report.status !== "done") setTimeout(recomputeStatus, POLL_MS);
  } catch (error) {
    // never recomputed yet: nothing to tell
    if (error.status === 404) line.textContent = "";
    else showError(error);
  }
}

// -- disposition runs -------------------------------------------------------------------

async function dryRun() {
  const box = $("#dry-run-result");
  box.hidden = false;
  clear(box, h("p", { class: "hint" }, t("retention.dry_running")));
  try {
    const run = await api("POST", "/api/retention/runs", { body: { dry_run: true } });
    clear(box,
      h("h3", {}, t("retention.dry_run_title", { n: fmtNumber(run.planned), at: fmtDate(run.cutoff) })),
      run.planned
        ? h("div", { class: "breakdowns" },
          breakdown(t("retention.by_policy"), [t("retention.policy"), t("retention.count")], run.by_policy, "run-by-policy"),
          breakdown(t("retention.by_department"), [t("retention.department"), t("retention.count")], run.by_department, "run-by-department", department),
          breakdown(t("retention.by_month"), [t("retention.month"), t("retention.count")], run.by_month, "run-by-month"))
        : h("p", { class: "empty" }, t("retention.nothing_due")),
      run.planned > run.approval_limit
        ? h("p", { class: "hint" }, t("retention.needs_approval", { limit: fmtNumber(run.approval_limit) }))
        : null);
    dryRunDone = run.planned > 0;
    $("#start-run").disabled = !dryRunDone;
  } catch (error) {
    box.hidden = true;
    showError(error);
  }
}

async function startRun() {
  if (!dryRunDone || !confirm(t("retention.confirm_run"))) return;
  $("#start-run").disabled = true;
  dryRunDone = false;
  try {
    const run = await api("POST", "/api/retention/runs", { body: { dry_run: false } });
    notify(t(run.status === "awaiting_approval" ? "retention.run_awaits" : "retention.run_started", { id: run.id }));
    $("#dry-run-result").hidden = true;
    loadRuns();
  } catch (error) {
    showError(error);
  }
}

async function loadRuns() {
  clearTimeout(polling);
  const rows = $("#run-rows");
  if (!rows.children.length) clear(rows, h("tr", {}, h("td", { colspan: "6", class: "hint" }, t("common.loading"))));
  try {
    const runs = await api("GET", "/api/retention/runs");
    clear(rows, runs.map(runRow));
    if (!runs.length) rows.append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, t("retention.no_runs"))));
    // follow the runs still deleting (an approved run starts in the background)
    if (runs.some((r) => r.status === "running" || r.status === "approved")) polling = setTimeout(loadRuns, POLL_MS);
  } catch (error) {
    clear(rows);
    showError(error);
  }
}

function runRow(run) {
  const mine = user && run.requested_by === user.username;
  const kept = run.kept_held + run.kept_by_policy + run.kept_locked + run.kept_spooled;
  const actions = [];
  if (run.status === "awaiting_approval") {
    actions.push(mine
      ? h("span", { class: "hint" }, t("retention.second_person"))
      : h("button", { type: "button", class: "primary approve", onclick: () => decide(run, "approve") }, t("retention.approve")));
  }
  if (run.status === "awaiting_approval" || run.status === "approved") {
    actions.push(h("button", { type: "button", class: "danger cancel", onclick: () => decide(run, "cancel") },
      t(mine ? "retention.withdraw" : "retention.reject")));
  }
  return h("tr", { dataset: { run: run.id, status: run.status } },
    h("td", {}, h("code", {}, run.id)),
    h("td", {}, statusBadge(run.status, t(`retention.status_${run.status}`))),
    h("td", {}, run.requested_by, h("div", { class: "hint" }, fmtDate(run.requested_at))),
    h("td", {}, run.approved_by || "—", run.approved_at ? h("div", { class: "hint" }, fmtDate(run.approved_at)) : null),
    h("td", {},
      h("progress", {
        class: "progress", max: String(Math.max(1, run.planned)), value: String(run.deleted),
        "aria-label": t("retention.progress"),
      }),
      h("div", { class: "run-figures" }, t("retention.run_figures", {
        deleted: fmtNumber(run.deleted), planned: fmtNumber(run.planned),
        kept: fmtNumber(kept), failed: fmtNumber(run.failed),
      })),
      run.errors.length
        ? h("details", {}, h("summary", {}, t("retention.errors", { n: run.errors.length })),
          h("ul", {}, run.errors.map((e) => h("li", {}, e))))
        : null),
    h("td", {}, h("div", { class: "run-actions" }, actions)));
}

async function decide(run, how) {
  const question = how === "approve" ? "retention.confirm_approve" : "retention.confirm_cancel";
  if (!confirm(t(question, { id: run.id, n: fmtNumber(run.planned) }))) return;
  try {
    await api("POST", `/api/retention/runs/${run.id}/${how}`);
    notify(t(how === "approve" ? "retention.approved_done" : "retention.cancelled_done", { id: run.id }));
  } catch (error) {
    showError(error);
  }
  loadRuns();
}

form.addEventListener("submit", showPreview);
form.addEventListener("input", () => { if (previewed) invalidate(); });
form.addEventListener("change", () => { if (previewed) invalidate(); });
saveButton.addEventListener("click", savePolicy);
$("#new-policy").addEventListener("click", () => openEditor(null));
$("#cancel-edit").addEventListener("click", closeEditor);
$("#dry-run").addEventListener("click", dryRun);
$("#start-run").addEventListener("click", startRun);

// a draft restored after signing in again: show the editor it was typed in
if (form.elements.name.value) editor.hidden = false;
loadPolicies();
loadRuns();
recomputeStatus();
