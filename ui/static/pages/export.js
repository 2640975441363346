// One export: its progress while it is built (polled every second until it finishes), its
// parts to download (size, SHA-256), how to verify the signed package offline, its custody
// log and expiry; cancelling while it is built.
import {
  $, api, clear, fmtBytes, fmtDate, fmtNumber, h, notify, params, showError, t,
} from "/ui/static/app.js";
import { FINISHED, percent, progressText, statusBadge } from "/ui/static/pages/exports-lib.js";

const exportId = params.export_id;
const POLL_MS = 1000;
let timer = 0;
let publicKey = null;
let lastStatus = "";

async function poll() {
  clearTimeout(timer);
  try {
    const job = await api("GET", `/api/exports/${exportId}`);
    show(job);
    if (!FINISHED.has(job.status)) {
      timer = setTimeout(poll, POLL_MS);
    } else if (job.status !== lastStatus) {
      custody(); // finishing wrote to the custody log
    }
    lastStatus = job.status;
  } catch (error) {
    showError(error);
  }
}

function show(job) {
  const request = job.request;
  document.title = `${request.name} · ${t("common.product")}`;
  $("#export-name").textContent = request.name;
  clear($("#export-status"), statusBadge(job));
  const bar = $("#export-progress");
  bar.value = percent(job);
  bar.textContent = `${percent(job)}%`;
  bar.dataset.status = job.status;
  $("#progress-text").textContent = progressText(job);
  $("#cancel-export").hidden = FINISHED.has(job.status);
  const error = $("#export-error");
  error.hidden = !job.error;
  error.textContent = job.error || "";
  const p = job.progress || {};
  clear($("#export-fields"),
    field(t("export.what"), request.kind === "matter"
      ? h("a", { href: `/ui/matters/${request.matter}` }, t("exports.of_matter", { matter: request.matter }))
      : request.kind === "query" ? h("code", {}, request.query) : t("exports.of_ids", { n: fmtNumber(request.ids.length) })),
    field(t("exports.format"), [request.format.toUpperCase(),
      request.pdf || request.format === "pdf" ? ` · ${t("exports.with_pdf")}` : "",
      request.load_file ? ` · ${t("exports.load_file")}` : ""].join("")),
    field(t("export.requested"), `${fmtDate(job.requested_at)} · ${job.requested_by}`),
    job.built_at ? field(t("export.built"), fmtDate(job.built_at)) : null,
    field(t("exports.expires"), job.expires_at ? fmtDate(job.expires_at) : "—"),
    p.missing ? field(t("export.missing"), fmtNumber(p.missing)) : null);
  parts(job);
  verification(job);
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function parts(job) {
  const rows = $("#part-rows");
  if (!job.parts.length) {
    clear(rows, h("tr", {}, h("td", { colspan: "3", class: "empty" },
      job.status === "done" ? t("export.no_parts") : t("export.parts_pending"))));
    return;
  }
  const downloadable = job.status === "done";
  clear(rows, job.parts.map((part) => h("tr", { class: "part-row" },
    h("td", {}, downloadable
      ? h("a", { href: `/api/exports/${exportId}/parts/${part.number}`, download: part.name, class: "part-link", dataset: { part: part.number } }, part.name)
      : part.name),
    h("td", {}, fmtBytes(part.size), h("div", { class: "hint" }, t("export.files", { n: fmtNumber(part.files) }))),
    h("td", {}, h("code", { class: "sha" }, part.sha256)))));
}

function verification(job) {
  const shown = $("#verification");
  const keyHex = publicKey ? publicKey.public_key : "…";
  $("#verify-command").textContent =
    `python3 -I verify.py --public-key ${keyHex}\n# ${t("export.verify_cli")}\nmailvault export verify DIR`;
  clear($("#verify-fields"),
    field(t("export.archive_key"), h("code", {}, publicKey ? publicKey.fingerprint : "…")),
    job.key_fingerprint ? field(t("export.signed_with"), h("code", {}, job.key_fingerprint)) : null,
    job.manifest_sha256 ? field(t("export.manifest"), h("code", {}, `sha256:${job.manifest_sha256}`)) : null);
  if (job.status !== "done" || !job.manifest_sha256) {
    shown.className = "badge";
    shown.textContent = t("export.not_signed_yet");
  } else if (publicKey && job.key_fingerprint === publicKey.fingerprint) {
    shown.className = "badge good";
    shown.textContent = t("export.signed_by_archive");
  } else if (publicKey) {
    shown.className = "badge bad";
    shown.textContent = t("export.signed_by_other");
  } else {
    shown.className = "badge";
    shown.textContent = t("export.signed");
  }
}

async function custody() {
  try {
    const response = await api("GET", `/api/exports/${exportId}/custody`, { raw: true });
    if (!response.ok) throw new Error(t("export.custody_failed", { status: response.status }));
    const lines = (await response.text()).split("\n").filter((line) => line && !line.startsWith("#"));
    const rows = $("#custody-rows");
    clear(rows, lines.map((line) => {
      const [time, event, actor, client, ...detail] = line.split("\t");
      return h("tr", { class: "custody-row", dataset: { event } },
        h("td", {}, h("time", { datetime: time }, fmtDate(time))),
        h("td", {}, t(`export.event_${event}`)),
        h("td", {}, actor),
        h("td", {}, client),
        h("td", {}, detail.join(" ")));
    }));
    if (!lines.length) rows.append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, t("export.custody_empty"))));
  } catch (error) {
    showError(error);
  }
}

$("#cancel-export").addEventListener("click", async () => {
  if (!confirm(t("export.cancel_confirm"))) return;
  try {
    const job = await api("POST", `/api/exports/${exportId}/cancel`);
    notify(t("export.cancelled_notice"));
    show(job);
    custody();
  } catch (error) {
    showError(error);
  }
});

$("#custody-refresh").addEventListener("click", custody);
// a download (a link the browser follows) is written to the custody log: show it on return
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") custody();
});

async function start() {
  try {
    publicKey = await api("GET", "/api/exports/pubkey");
  } catch (error) {
    showError(error);
  }
  await poll();
  custody();
}

start();
