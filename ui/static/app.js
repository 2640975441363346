// The UI's core, shared by every page: boot data, translations, DOM building, API calls,
// dates, highlights, drafts that survive a session's end, keyboard navigation.
// Written by hand, without a framework: it is small, and the pages are server-rendered shells.

const bootElement = document.getElementById("mv-boot");
export const boot = JSON.parse(bootElement ? bootElement.textContent : "{}");
export const params = boot.params || {};
export const user = boot.user;

export function may(permission) {
  return Boolean(user && user.permissions.includes(permission));
}

// t("search.total", {n: 3}): the catalog's text with {n} filled in; a missing key shows itself
export function t(key, values) {
  const text = (boot.messages || {})[key];
  if (text === undefined) {
    console.error("missing translation", key);
    return key;
  }
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    name in values ? String(values[name]) : whole,
  );
}

// h("a", {href: "/x", class: "c", onclick: fn}, "text", child): an element; strings become
// text nodes, so nothing given here is ever parsed as HTML
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "text") {
      element.textContent = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function $(selector, root) {
  return (root || document).querySelector(selector);
}

// The archive's highlights are HTML with matches in <em>. They are parsed in an inert document
// (no script runs, nothing loads) and only their text and <em> marks are copied out, so a
// hostile subject stays text whatever the server sent.
export function marked(html) {
  const parsed = new DOMParser().parseFromString(`<body>${html || ""}</body>`, "text/html");
  const out = document.createDocumentFragment();
  const copy = (node, into) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        into.append(document.createTextNode(child.textContent));
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        if (child.tagName === "EM") {
          const mark = document.createElement("mark");
          copy(child, mark);
          into.append(mark);
        } else {
          copy(child, into);
        }
      }
    }
  };
  copy(parsed.body, out);
  return out;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.error = body && body.error;
    this.body = body || {};
  }
}

const csrf = () => (document.querySelector('meta[name="mv-csrf"]') || {}).content || "";

export function signInAgain() {
  saveDrafts();
  const here = location.pathname + location.search + location.hash;
  location.assign(`/ui/sign-in?next=${encodeURIComponent(here)}&expired=1`);
}

// api("GET", "/api/search", {query: {q}}) → the JSON body; throws ApiError. A 401 means the
// session ended: the reader signs in again and comes back to this very URL, drafts restored.
export async function api(method, path, options) {
  const { query, body, raw } = options || {};
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !path.startsWith("/api/session")) {
    signInAgain();
    throw new ApiError(401, { message: t("common.session_ended") });
  }
  if (raw) return response;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Dates in the archive's display time zone (not the browser's): everyone reads the same day.
const dateTimeFormat = new Intl.DateTimeFormat(boot.lang, {
  timeZone: boot.tz,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const dateFormat = new Intl.DateTimeFormat(boot.lang, {
  timeZone: boot.tz,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

export function fmtDate(iso, withTime = true) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (withTime ? dateTimeFormat : dateFormat).format(date);
}

const numberFormat = new Intl.NumberFormat(boot.lang);
export const fmtNumber = (n) => numberFormat.format(n);

export function fmtBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

// A short notice at the top of the page (errors from the API, confirmations).
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  if (!notice) return;
  notice.className = `notice ${kind}`;
  notice.textContent = message;
  notice.hidden = false;
}

export function showError(error) {
  notify(error instanceof ApiError || error instanceof Error ? error.message : String(error), "error");
}

// Forms marked data-draft="name" keep what was typed in sessionStorage, so a session that ends
// mid-edit loses nothing: the reader signs in again and finds the form as they left it.
function saveDrafts() {
  for (const form of document.querySelectorAll("form[data-draft]")) {
    const values = {};
    for (const field of form.elements) {
      if (!field.name || field.type === "password") continue;
      const key = field.type === "checkbox" || field.type === "radio" ? `${field.name}\u0000${field.value}` : field.name;
      values[key] = field.type === "checkbox" || field.type === "radio" ? field.checked : field.value;
    }
    sessionStorage.setItem(`mv-draft:${location.pathname}:${form.dataset.draft}`, JSON.stringify(values));
  }
}

export function restoreDraft(form) {
  const key = `mv-draft:${location.pathname}:${form.dataset.draft}`;
  const saved = sessionStorage.getItem(key);
  if (!saved) return false;
  sessionStorage.removeItem(key);
  const values = JSON.parse(saved);
  for (const field of form.elements) {
    const choice = field.type === "checkbox" || field.type === "radio";
    const key = choice ? `${field.name}\u0000${field.value}` : field.name;
    if (!(key in values)) continue;
    if (choice) field.checked = values[key];
    else field.value = values[key];
  }
  return true;
}

// Keyboard: "/" focuses the search box; j / k move through a list marked data-keynav, Enter
// opens the current item's first link.
function onKey(event) {
  const target = event.target;
  const typing =
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable);
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    const box = document.querySelector("[data-search-box]");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
    return;
  }
  if (event.key !== "j" && event.key !== "k") return;
  const items = [...document.querySelectorAll("[data-keynav] > [data-item]")];
  if (!items.length) return;
  const current = items.indexOf(document.activeElement);
  const next =
    event.key === "j" ? Math.min(items.length - 1, current + 1) : Math.max(0, current - 1);
  items[next === -1 ? 0 : next].focus();
  event.preventDefault();
}

document.addEventListener("keydown", onKey);
document.addEventListener("keydown", (event) => {
  const item = event.target;
  if (event.key === "Enter" && item instanceof HTMLElement && item.matches("[data-keynav] > [data-item]")) {
    const link = item.querySelector("a[href]");
    if (link) link.click();
  }
});

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/session");
    } finally {
      location.assign("/ui/sign-in");
    }
  });
}

for (const form of document.querySelectorAll("form[data-draft]")) restoreDraft(form);
