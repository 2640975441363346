// Users & roles: local and directory (LDAP) users with their roles, departments and state; new
// local users; custom roles. The user being edited is in the URL (?user=name). Passwords are
// only ever sent, never shown — except a generated one, once, to the administrator who made it.
import { $, api, clear, fmtNumber, h, notify, t, user as me } from "/ui/static/app.js";
import { describe, splitList } from "/ui/static/pages/rules-lib.js";

let users = [];
let roles = [];
let editing = null;

const fail = (error) => notify(t("common.error", { message: describe(error) }), "error");
const url = (name) => `/api/users/${encodeURIComponent(name)}`;

function roleChecks(box, prefix, chosen) {
  clear(box, roles.map((role) => {
    const id = `${prefix}-role-${role.name}`;
    return h("label", { class: "check", for: id },
      h("input", { type: "checkbox", id, value: role.name, dataset: { role: role.name }, checked: chosen.includes(role.name) }),
      ` ${role.name}`, role.department_scoped ? h("span", { class: "badge", title: t("users.department_scoped") }, t("users.scoped_short")) : null);
  }));
}

const checkedRoles = (box) => [...box.querySelectorAll("input[data-role]:checked")].map((i) => i.value);

async function loadAll() {
  try {
    [users, roles] = await Promise.all([api("GET", "/api/users"), api("GET", "/api/roles")]);
  } catch (error) {
    $("#users-count").textContent = "";
    return fail(error);
  }
  showUsers();
  showRoles();
  const kept = checkedRoles($("#new-roles"));
  roleChecks($("#new-roles"), "new", kept);
  const wanted = new URLSearchParams(location.search).get("user");
  if (wanted && users.some((u) => u.username === wanted)) openEditor(wanted, editing !== wanted);
}

function provider(u) {
  return u.provider === "local" ? t("users.provider_local") : t("users.provider_directory", { name: u.provider });
}

function showUsers() {
  const needle = $("#user-filter").value.trim().toLowerCase();
  const shown = users.filter((u) => !needle || [u.username, u.display_name, u.email].some((v) => (v || "").toLowerCase().includes(needle)));
  $("#users-count").textContent = t("users.count", { n: fmtNumber(shown.length), total: fmtNumber(users.length) });
  clear($("#users-body"), shown.map((u) => h("tr", { dataset: { user: u.username }, class: u.disabled ? "disabled" : undefined },
    h("td", {}, h("strong", {}, u.username), u.display_name ? h("div", { class: "hint" }, u.display_name) : null, u.email ? h("div", { class: "hint" }, u.email) : null),
    h("td", {}, [...u.roles, ...u.directory_roles.map((r) => `${r} (${t("users.from_directory")})`)].join(", ") || "—"),
    h("td", {}, [...u.departments, ...u.directory_departments.map((d) => `${d} (${t("users.from_directory")})`)].join(", ") || "—"),
    h("td", {}, provider(u)),
    h("td", {}, h("span", { class: u.disabled ? "badge bad" : "badge good" }, t(u.disabled ? "users.disabled" : "users.active"))),
    h("td", {}, h("button", { type: "button", class: "link", onclick: () => openEditor(u.username, true), "aria-label": t("users.edit_named", { name: u.username }) }, t("users.edit"))))));
  if (!shown.length) $("#users-body").append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, t("users.none"))));
}

function openEditor(name, fill) {
  const u = users.find((x) => x.username === name);
  if (!u) return;
  editing = name;
  history.replaceState(null, "", `?user=${encodeURIComponent(name)}`);
  const panel = $("#edit-user");
  panel.hidden = false;
  $("#edit-user-heading").textContent = t("users.edit_title", { name });
  if (fill) {
    roleChecks($("#edit-roles"), "edit", u.roles);
    $("#edit-departments").value = u.departments.join(", ");
    $("#new-password").value = "";
  }
  const grants = $("#edit-directory-grants");
  grants.hidden = !(u.directory_roles.length || u.directory_departments.length);
  grants.textContent = t("users.directory_grants", {
    roles: u.directory_roles.join(", ") || "—", departments: u.directory_departments.join(", ") || "—",
  });
  const toggle = $("#toggle-disabled");
  toggle.textContent = t(u.disabled ? "users.enable" : "users.disable");
  toggle.className = u.disabled ? "" : "danger";
  toggle.disabled = me && me.username === name;
  $("#password-form").hidden = u.provider !== "local"; // a directory user's password is the directory's
  if (fill) $("#edit-departments").focus();
}

function closeEditor() {
  editing = null;
  $("#edit-user").hidden = true;
  history.replaceState(null, "", location.pathname);
}

async function change(body, message) {
  try {
    const changed = await api("PATCH", url(editing), { body });
    users = users.map((u) => (u.username === changed.username ? changed : u));
    notify(message);
    showUsers();
    openEditor(changed.username, false);
  } catch (error) {
    fail(error);
  }
}

$("#edit-user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change({ roles: checkedRoles($("#edit-roles")), departments: splitList($("#edit-departments").value) }, t("users.user_saved", { name: editing }));
});

$("#toggle-disabled").addEventListener("click", () => {
  const u = users.find((x) => x.username === editing);
  if (!u) return;
  if (!u.disabled && !confirm(t("users.confirm_disable", { name: u.username }))) return;
  change({ disabled: !u.disabled }, t(u.disabled ? "users.enabled_done" : "users.disabled_done", { name: u.username }));
});

$("#close-edit").addEventListener("click", closeEditor);

$("#password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = $("#new-password");
  try {
    await api("PUT", `${url(editing)}/password`, { body: { password: field.value } });
    field.value = "";
    notify(t("users.password_set", { name: editing }));
  } catch (error) {
    fail(error);
  }
});

$("#new-user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target.elements;
  const body = {
    username: f.username.value.trim(),
    password: f.password.value || null,
    display_name: f.display_name.value.trim(),
    email: f.email.value.trim(),
    roles: checkedRoles($("#new-roles")),
    departments: splitList(f.departments.value),
  };
  try {
    const created = await api("POST", "/api/users", { body });
    const generated = $("#generated");
    generated.hidden = !created.password;
    clear(generated, created.password ? [t("users.generated", { name: created.user.username }), " ", h("code", {}, created.password)] : null);
    event.target.reset();
    roleChecks($("#new-roles"), "new", []);
    notify(t("users.created", { name: created.user.username }));
    users = [...users, created.user].sort((a, b) => a.username.localeCompare(b.username));
    showUsers();
  } catch (error) {
    fail(error);
  }
});

function showRoles() {
  clear($("#roles-body"), roles.map((role) => h("tr", { dataset: { role: role.name } },
    h("td", {}, h("strong", {}, role.name), role.builtin ? h("span", { class: "badge" }, t("users.builtin")) : null,
      role.description ? h("div", { class: "hint" }, role.description) : null),
    h("td", {}, h("ul", { class: "tags" }, [...role.permissions].sort().map((p) => h("li", { title: p }, t(`users.perm_${p}`))))),
    h("td", {}, t(role.department_scoped ? "common.yes" : "common.no")),
    h("td", { class: "row-actions" }, role.builtin ? null : [
      h("button", { type: "button", class: "link", onclick: () => editRole(role), "aria-label": t("users.edit_named", { name: role.name }) }, t("users.edit")),
      h("button", { type: "button", class: "link danger", onclick: () => deleteRole(role.name), "aria-label": t("users.delete_role_named", { name: role.name }) }, t("common.delete")),
    ]))));
}

function editRole(role) {
  const form = $("#role-form");
  form.elements.name.value = role.name;
  form.elements.description.value = role.description;
  form.elements.department_scoped.checked = role.department_scoped;
  for (const box of form.querySelectorAll("input[data-permission]")) box.checked = role.permissions.includes(box.value);
  form.elements.name.focus();
}

async function deleteRole(name) {
  if (!confirm(t("users.confirm_delete_role", { name }))) return;
  try {
    await api("DELETE", `/api/roles/${encodeURIComponent(name)}`);
    notify(t("users.role_deleted", { name }));
    loadAll();
  } catch (error) {
    fail(error);
  }
}

$("#role-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const permissions = [...form.querySelectorAll("input[data-permission]:checked")].map((i) => i.value);
  if (!permissions.length) return notify(t("users.role_needs_permission"), "error");
  try {
    await api("PUT", `/api/roles/${encodeURIComponent(name)}`, {
      body: { permissions, department_scoped: form.elements.department_scoped.checked, description: form.elements.description.value.trim() },
    });
    notify(t("users.role_saved", { name }));
    form.reset();
    loadAll();
  } catch (error) {
    fail(error);
  }
});

$("#user-filter").addEventListener("input", showUsers);

loadAll();
