// Rules & directory: tagging rules (list, edit with a preview of what they would tag, apply to
// archived mail with progress), the department directory (import, people) and the tags in use.
// The rule being edited is in the URL (?rule=name), so signing in again comes back to it.
import { $, api, ApiError, clear, fmtDate, fmtNumber, h, notify, t } from "/ui/static/app.js";
import { describe, sendFile, splitList } from "/ui/static/pages/rules-lib.js";

const form = $("#rule-form");
const POLL_MS = 700;
const SAMPLES_SHOWN = 5;
const NOT_STARTED_POLLS = 60; // a job with no report after this many polls did not start
let rules = [];
let people = [];

const fail = (error) => notify(t("common.error", { message: describe(error) }), "error");

function criteria(when) {
  if (when && when.field && when.op && !("all" in when) && !("any" in when)) {
    return `${when.field} ${when.op} ${JSON.stringify(when.value)}`;
  }
  return JSON.stringify(when);
}

async function loadRules() {
  try {
    rules = await api("GET", "/api/rules");
  } catch (error) {
    $("#rules-count").textContent = "";
    return fail(error);
  }
  const live = rules.filter((v) => v.rule);
  $("#rules-count").textContent = live.length ? t("rules.count", { n: fmtNumber(live.length) }) : t("rules.none");
  clear($("#rules-body"), live.map(row));
}

function row(version) {
  const rule = version.rule;
  const tags = [...rule.actions.add_tags];
  if (rule.actions.set_department) tags.push(`department/${rule.actions.set_department}`);
  return h("tr", { dataset: { rule: rule.name } },
    h("td", {}, h("strong", {}, rule.name), rule.description ? h("div", { class: "hint" }, rule.description) : null),
    h("td", {}, h("code", { class: "criteria" }, criteria(rule.when))),
    h("td", {}, h("ul", { class: "tags" }, tags.map((tag) => h("li", {}, tag)))),
    h("td", { title: t("rules.saved_by", { user: version.saved_by || "—", at: fmtDate(version.saved_at) }) }, `v${version.version}`),
    h("td", {}, h("span", { class: rule.enabled ? "badge good" : "badge" }, t(rule.enabled ? "common.yes" : "common.no"))),
    h("td", { class: "row-actions" },
      h("button", { type: "button", class: "link", onclick: () => edit(rule.name), "aria-label": t("rules.edit_named", { name: rule.name }) }, t("rules.edit")),
      h("button", { type: "button", class: "link danger", onclick: () => remove(rule.name), "aria-label": t("rules.delete_named", { name: rule.name }) }, t("common.delete"))));
}

function fillForm(rule) {
  const f = form.elements;
  f.name.value = rule ? rule.name : "";
  f.description.value = rule ? rule.description : "";
  f.enabled.checked = rule ? rule.enabled : true;
  f.add_tags.value = rule ? rule.actions.add_tags.join(", ") : "";
  f.set_department.value = rule ? rule.actions.set_department || "" : "";
  const when = rule ? rule.when : null;
  const simple = when && when.field && when.op && Object.keys(when).every((k) => ["field", "op", "value", "case_sensitive"].includes(k));
  f.field.value = simple ? when.field : "subject";
  f.op.value = simple ? when.op : "contains";
  f.value.value = simple ? String(when.value) : "";
  f.when.value = when && !simple ? JSON.stringify(when, null, 2) : "";
  $("#advanced").open = Boolean(when && !simple);
  $("#apply-rule").disabled = !rule;
  clear($("#preview"));
  $("#apply-progress").hidden = true;
}

function edit(name) {
  const found = rules.find((v) => v.rule && v.rule.name === name);
  if (!found) return;
  history.replaceState(null, "", `?rule=${encodeURIComponent(name)}`);
  fillForm(found.rule);
  form.elements.name.focus();
}

async function remove(name) {
  if (!confirm(t("rules.confirm_delete", { name }))) return;
  try {
    await api("DELETE", `/api/rules/${encodeURIComponent(name)}`);
    notify(t("rules.deleted", { name }));
    if (form.elements.name.value === name) fillForm(null);
    loadRules();
  } catch (error) {
    fail(error);
  }
}

// the form as a rule; a condition typed as JSON wins over the simple one
function drafted() {
  const f = form.elements;
  let when;
  if (f.when.value.trim()) {
    try {
      when = JSON.parse(f.when.value);
    } catch (error) {
      throw new Error(t("rules.bad_json", { message: error.message }));
    }
  } else {
    const value = f.field.value === "size" ? Number(f.value.value) : f.value.value;
    when = { field: f.field.value, op: f.op.value, value };
  }
  return {
    name: f.name.value.trim(),
    description: f.description.value.trim(),
    enabled: f.enabled.checked,
    when,
    actions: { add_tags: splitList(f.add_tags.value), set_department: f.set_department.value.trim() || null },
  };
}

function report(result, title) {
  const gained = Object.entries(result.gained || {});
  const lost = Object.entries(result.lost || {});
  const samples = (result.samples && result.samples.gained) || {};
  const anySamples = Object.values(samples).some((list) => list.length);
  return h("div", { class: "report" },
    h("h3", {}, title),
    h("p", { class: "report-counts" }, t("rules.report_counts", { scanned: fmtNumber(result.scanned), changed: fmtNumber(result.changed) })),
    gained.length || lost.length
      ? h("ul", { class: "report-tags" },
        gained.map(([tag, n]) => h("li", { dataset: { tag, gained: String(n) } },
          t("rules.report_gained", { tag, n: fmtNumber(n) }),
          (samples[tag] || []).length
            ? h("ul", { class: "samples" }, samples[tag].slice(0, SAMPLES_SHOWN).map((s) => h("li", {}, s.subject || t("rules.no_subject"))))
            : null)),
        lost.map(([tag, n]) => h("li", { dataset: { tag, lost: String(n) } }, t("rules.report_lost", { tag, n: fmtNumber(n) }))))
      : h("p", { class: "empty" }, t("rules.report_nothing")),
    gained.length && !anySamples ? h("p", { class: "hint" }, t("rules.samples_hidden")) : null,
    result.failed ? h("p", { class: "error" }, t("rules.report_failed", { n: fmtNumber(result.failed) })) : null,
    result.timed_out ? h("p", { class: "error" }, t("rules.report_timed_out", { n: fmtNumber(result.timed_out) })) : null);
}

async function preview() {
  const out = $("#preview");
  let rule;
  try {
    rule = drafted();
  } catch (error) {
    return fail(error);
  }
  clear(out, h("p", { class: "hint" }, t("rules.previewing")));
  try {
    const result = await api("POST", "/api/rules/preview", { body: { ...rule, name: rule.name || "draft" } });
    clear(out, report(result, t("rules.preview_title")));
  } catch (error) {
    clear(out);
    fail(error);
  }
}

async function save(event) {
  event.preventDefault();
  let rule;
  try {
    rule = drafted();
  } catch (error) {
    return fail(error);
  }
  if (!rule.name) return notify(t("rules.name_needed"), "error");
  try {
    const saved = await api("PUT", `/api/rules/${encodeURIComponent(rule.name)}`, { body: rule });
    notify(t("rules.saved", { name: saved.name, version: saved.version }));
    history.replaceState(null, "", `?rule=${encodeURIComponent(saved.name)}`);
    $("#apply-rule").disabled = false;
    await loadRules();
  } catch (error) {
    fail(error);
  }
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function apply() {
  const name = form.elements.name.value.trim();
  if (!name) return;
  const box = $("#apply-progress");
  const button = $("#apply-rule");
  button.disabled = true;
  box.hidden = false;
  $("#apply-bar").removeAttribute("value"); // indeterminate: the archive's size is not known ahead
  $("#apply-text").textContent = t("rules.applying");
  try {
    await api("POST", `/api/rules/${encodeURIComponent(name)}/apply`);
    // the job runs on the server; its report is there to be asked for until it says done
    for (let unseen = 0; ;) {
      await pause(POLL_MS);
      let status;
      try {
        status = await api("GET", `/api/rules/${encodeURIComponent(name)}/apply`);
      } catch (error) {
        // not started yet (it starts once the answer to the POST has been sent)
        if (error instanceof ApiError && error.status === 404 && ++unseen < NOT_STARTED_POLLS) continue;
        throw error;
      }
      $("#apply-text").textContent = t("rules.apply_progress", { scanned: fmtNumber(status.scanned), changed: fmtNumber(status.changed) });
      if (status.status === "done") {
        $("#apply-bar").value = 1;
        $("#apply-bar").max = 1;
        $("#apply-text").textContent = t("rules.apply_done", { scanned: fmtNumber(status.scanned), changed: fmtNumber(status.changed) });
        box.dataset.done = "true";
        clear($("#preview"), report(status, t("rules.apply_title")));
        loadTags();
        break;
      }
    }
  } catch (error) {
    box.hidden = true;
    fail(error);
  } finally {
    button.disabled = false;
  }
}

async function loadDirectory() {
  try {
    const directory = await api("GET", "/api/directory");
    people = Object.values(directory.people || {});
    $("#directory-summary").textContent = directory.version
      ? t("rules.directory_summary", {
        n: fmtNumber(people.length), version: directory.version,
        at: fmtDate(directory.imported_at), user: directory.imported_by || "—",
        scope: t(`rules.scope_${directory.scope}`),
      })
      : t("rules.directory_empty");
    showPeople();
  } catch (error) {
    $("#directory-summary").textContent = "";
    fail(error);
  }
}

function showPeople() {
  const needle = $("#directory-filter").value.trim().toLowerCase();
  const shown = people.filter((p) => !needle || [p.address, p.name, p.department].some((v) => (v || "").toLowerCase().includes(needle)));
  clear($("#directory-body"), shown.slice(0, 500).map((p) => h("tr", {},
    h("td", {}, p.address), h("td", {}, p.name || "—"), h("td", {}, p.department || "—"), h("td", {}, p.manager || "—"))));
  if (!shown.length && people.length) $("#directory-body").append(h("tr", {}, h("td", { colspan: "4", class: "empty" }, t("rules.directory_no_match"))));
}

async function importDirectory(event) {
  event.preventDefault();
  const f = event.target.elements;
  const file = f.file.files[0];
  if (!file) return notify(t("rules.directory_pick"), "error");
  const out = $("#directory-outcome");
  clear(out, h("p", { class: "hint" }, t("rules.directory_importing")));
  try {
    const result = await sendFile("/api/directory/import", file, {
      scope: f.scope.value, replace: f.replace.checked ? "true" : "", apply: f.apply.checked ? "true" : "",
    });
    clear(out,
      h("p", { class: "outcome" }, t("rules.directory_imported", { n: fmtNumber(result.people), version: result.version })),
      result.applied ? report(result.applied, t("rules.apply_title")) : null);
    event.target.reset();
    loadDirectory();
    if (result.applied) loadTags();
  } catch (error) {
    clear(out);
    fail(error);
  }
}

async function loadTags() {
  const box = $("#tags");
  try {
    const tags = await api("GET", "/api/tags");
    const defined = new Map((tags.defined || []).map((d) => [d.path, d.description]));
    const rows = new Map();
    for (const used of tags.used || []) rows.set(used.path, { path: used.path, messages: used.messages });
    for (const path of defined.keys()) if (!rows.has(path)) rows.set(path, { path, messages: null });
    const list = [...rows.values()].sort((a, b) => a.path.localeCompare(b.path));
    clear(box,
      h("p", { class: "hint" }, tags.namespaces.map((ns) => `${ns.path}/ — ${t(`rules.namespace_${ns.path}`)}`).join(" · ")),
      list.length
        ? h("table", { class: "tag-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("rules.tag")), h("th", { scope: "col" }, t("rules.tag_description")), h("th", { scope: "col" }, t("rules.tag_messages")))),
          h("tbody", {}, list.map((tag) => h("tr", { dataset: { tag: tag.path } },
            h("td", {}, tag.path), h("td", {}, defined.get(tag.path) || "—"),
            h("td", {}, tag.messages === null ? "—" : fmtNumber(tag.messages))))))
        : h("p", { class: "empty" }, t("rules.no_tags")));
  } catch (error) {
    clear(box);
    fail(error);
  }
}

form.addEventListener("submit", save);
$("#preview-rule").addEventListener("click", preview);
$("#apply-rule").addEventListener("click", apply);
$("#new-rule").addEventListener("click", () => {
  history.replaceState(null, "", location.pathname);
  fillForm(null);
  form.elements.name.focus();
});
$("#directory-form").addEventListener("submit", importDirectory);
$("#directory-filter").addEventListener("input", showPeople);

await loadRules();
const editing = new URLSearchParams(location.search).get("rule");
// a draft kept over a sign-in (app.js restored it) is newer than the saved rule
if (editing && form.elements.name.value !== editing) edit(editing);
else if (editing) $("#apply-rule").disabled = false;
loadDirectory();
loadTags();
