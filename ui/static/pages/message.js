// One message: headers, tags and where they came from, the body (HTML in its sandboxed frame),
// attachments, the conversation, copies, sources, retention and holds. Every part is read from
// the audited API; a part the reader may not see (raw, tagging) is not offered.
import { $, api, ApiError, clear, fmtBytes, fmtDate, h, may, params, showError, t } from "/ui/static/app.js";
import { mailFrame } from "/ui/static/mail_frame.js";

const id = params.message_id;
const base = `/api/messages/${id}`;

function address(a) {
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

// the date as written in the message (its own offset) and in the archive's time zone
function sentAt(doc) {
  if (!doc.date) return t("message.no_date");
  const offset = doc.date_offset_minutes;
  if (offset === null || offset === undefined) return fmtDate(doc.date);
  const local = new Date(new Date(doc.date).getTime() + offset * 60000).toISOString().slice(0, 16).replace("T", " ");
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}${String(abs % 60).padStart(2, "0")}`;
  return t("message.date_both", { original: `${local} ${zone}`, shown: fmtDate(doc.date) });
}

function headers(doc) {
  const rows = [
    ["message.from", (doc.from || []).map(address).join(", ")],
    ["message.to", (doc.to || []).map(address).join(", ")],
    ["message.cc", (doc.cc || []).map(address).join(", ")],
    ["message.bcc", (doc.bcc || []).map(address).join(", ")],
    ["message.envelope_to", (doc.envelope_to || []).join(", ")],
    ["message.envelope_from", (doc.envelope_from || []).join(", ")],
    ["message.date", sentAt(doc)],
    ["message.message_id", doc.message_id || ""],
    ["message.size", fmtBytes(doc.size || 0)],
    ["message.id", doc.id],
  ];
  clear($("#headers"), rows.filter(([, value]) => value).map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)]));
  const actions = $("#actions");
  if (may("view_raw")) {
    actions.append(h("a", { href: `${base}/raw`, download: `${id}.eml`, id: "raw-download", class: "button" }, t("message.download_raw")));
  }
}

async function body(doc) {
  $("#body-text").textContent = doc.body || t("message.no_text");
  if (!doc.has_html) return;
  const frame = await mailFrame(id);
  if (!frame) return;
  $("#body-html").append(frame);
  const tabs = $("#body-tabs");
  tabs.hidden = false;
  const show = (html) => {
    $("#body-html").hidden = !html;
    $("#body-text").hidden = html;
    $("#tab-html").setAttribute("aria-selected", String(html));
    $("#tab-text").setAttribute("aria-selected", String(!html));
  };
  $("#tab-html").addEventListener("click", () => show(true));
  $("#tab-text").addEventListener("click", () => show(false));
  show(true);
}

function attachments(doc) {
  const list = $("#attachments");
  const items = doc.attachments || [];
  if (!items.length) return list.append(h("li", { class: "empty" }, t("message.no_attachments")));
  for (const item of items) {
    const url = `${base}/attachments/${item.sha256}`;
    list.append(h("li", {},
      h("a", { href: url, download: item.filename || item.sha256 }, item.filename || t("message.unnamed")),
      h("span", { class: "muted" }, ` ${item.content_type} · ${fmtBytes(item.size)}`),
      item.extract_error ? h("span", { class: "error", title: item.extract_error }, ` ${t("message.no_text_extracted")}`) : null,
      item.text_chars ? h("button", { type: "button", class: "link", onclick: () => attachmentText(url, item) }, t("message.show_text")) : null));
  }
}

async function attachmentText(url, item) {
  const out = $("#attachment-text");
  out.hidden = false;
  out.textContent = t("common.loading");
  try {
    const extracted = await api("GET", `${url}/text`);
    out.textContent = `${item.filename}\n\n${extracted.text}${extracted.truncated ? `\n\n${t("message.truncated")}` : ""}`;
  } catch (error) {
    out.hidden = true;
    showError(error);
  }
}

function tags(view) {
  const list = $("#tags");
  clear(list, view.tags.length ? view.tags.map((tag) => h("li", {}, tag,
    may("tag") ? h("button", { type: "button", class: "remove-tag", "aria-label": t("message.remove_tag", { tag }), title: t("message.remove_tag", { tag }), onclick: () => changeTags([], [tag]) }, "×") : null)) : h("li", { class: "empty" }, t("common.none")));
  clear($("#tag-events"), view.events.map((event) => h("li", {},
    t(event.action === "add" ? "message.event_added" : "message.event_removed", { tag: event.tag }),
    " — ", byWhom(event.by), " · ", fmtDate(event.at))));
}

function byWhom(by) {
  if (by.kind === "rule") return t("message.by_rule", { rule: by.rule, version: by.version ?? "" });
  if (by.kind === "directory") return t("message.by_directory");
  return t("message.by_person", { user: by.user || "" });
}

async function changeTags(add, remove) {
  try {
    tags(await api("POST", `${base}/tags`, { body: { add, remove } }));
  } catch (error) {
    showError(error);
  }
}

function retention(why) {
  const until = why.forever ? t("message.kept_forever") : why.retain_until ? t("message.kept_until", { date: fmtDate(why.retain_until, false) }) : t("message.kept_unknown");
  clear($("#retention"), h("strong", {}, until), " ", t("message.because", { reason: why.reason }));
  clear($("#holds"), why.holds.map((hold) => h("li", { class: "badge bad" }, t("message.on_hold", { name: hold.name, matter: hold.matter }))));
  if (why.storage && why.storage.retain_until) {
    $("#holds").append(h("li", { class: "muted" }, t("message.storage_lock", { date: fmtDate(why.storage.retain_until, false), mode: why.storage.mode || "" })));
  }
}

function sources(doc) {
  clear($("#sources"), (doc.sources || []).map((s) => h("li", {}, `${s.kind}: ${s.detail || ""}`, h("span", { class: "muted" }, ` · ${fmtDate(s.received_at)}`))));
  const copies = doc.related_ids || [];
  clear($("#copies"), copies.length ? copies.map((other) => h("li", {}, h("a", { href: `/ui/messages/${other}` }, other.slice(0, 16)))) : h("li", { class: "empty" }, t("common.none")));
}

function conversation(thread) {
  clear($("#conversation"), thread.messages.map((m) => h("li", { class: m.id === id ? "current" : "" },
    m.id === id ? h("strong", {}, m.subject || t("search.no_subject")) : h("a", { href: `/ui/messages/${m.id}` }, m.subject || t("search.no_subject")),
    h("span", { class: "muted" }, ` · ${(m.from || []).map(address).join(", ")} · ${fmtDate(m.date)}`))));
}

async function part(promise, render) {
  try {
    render(await promise);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

async function load() {
  let doc;
  try {
    doc = await api("GET", base);
  } catch (error) {
    $("#subject").textContent = error instanceof ApiError && error.status === 404 ? t("message.not_found") : t("error.failed");
    if (!(error instanceof ApiError && error.status === 404)) showError(error);
    return;
  }
  document.title = `${doc.subject || t("search.no_subject")} · ${t("common.product")}`;
  $("#subject").textContent = doc.subject || t("search.no_subject");
  if (doc.parse_failed || doc.parse_error) {
    $("#parse-problem").textContent = t("message.parse_failed", { error: doc.parse_error || "" });
    $("#parse-problem").hidden = false;
  }
  headers(doc);
  attachments(doc);
  sources(doc);
  $("#tag-form").hidden = !may("tag");
  await Promise.all([
    body(doc).catch(showError),
    part(api("GET", `${base}/tags`), tags),
    part(api("GET", `${base}/retention`), retention),
    part(api("GET", `/api/threads/${id}`), conversation),
  ]);
  $(".message").setAttribute("aria-busy", "false");
}

$("#tag-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const tag = event.target.elements.tag.value.trim();
  if (tag) changeTags([tag], []);
  event.target.elements.tag.value = "";
});
if (document.referrer.includes("/ui/search")) {
  $("#back-to-search").addEventListener("click", (event) => {
    event.preventDefault();
    history.back();
  });
}
load();
