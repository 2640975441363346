// The Status page: backend health, ingest rate and lag, queues, failures and storage, from
// GET /api/status (counts only, never mail). Refreshed every half minute while open.
import { $, api, clear, fmtBytes, fmtDate, fmtNumber, h, showError, t } from "/ui/static/app.js";

const REFRESH_MS = 30000;

const SERVICES = {
  elasticsearch: () => t("status.service_elasticsearch"),
  s3: () => t("status.service_s3"),
  redis: () => t("status.service_redis"),
};

const none = () => t("status.unknown");
const count = (n) => (n === null || n === undefined ? none() : fmtNumber(n));
const bytes = (n) => (n === null || n === undefined ? none() : fmtBytes(n));
const seconds = (s) =>
  s === null || s === undefined ? none() : t("status.seconds", { n: fmtNumber(s) });

function fields(element, rows) {
  clear(
    element,
    rows.map(([label, value]) => [h("dt", null, label), h("dd", null, value)]),
  );
}

function services(list) {
  const body = $("#services tbody");
  clear(
    body,
    list.map((s) =>
      h(
        "tr",
        { dataset: { service: s.name, up: s.up ? "1" : "0" } },
        h("th", { scope: "row" }, (SERVICES[s.name] || (() => s.name))()),
        h(
          "td",
          null,
          h("span", { class: s.up ? "badge good" : "badge bad" }, s.up ? t("status.up") : t("status.down")),
        ),
        h("td", null, s.detail ? `${s.status} · ${s.detail}` : s.status),
      ),
    ),
  );
}

function show(status) {
  $("#checked-at").textContent = fmtDate(status.checked_at);
  $("#checked-at").setAttribute("datetime", status.checked_at);
  services(status.services);
  const ingest = status.ingest;
  const lag = status.lag;
  fields($("#ingest"), [
    [t("status.messages"), count(status.messages)],
    [t("status.per_minute"), ingest ? fmtNumber(ingest.per_minute) : none()],
    [t("status.last_5m"), count(ingest && ingest.last_5m)],
    [t("status.last_60m"), count(ingest && ingest.last_60m)],
    [t("status.lag_p50"), seconds(lag && lag.p50_seconds)],
    [t("status.lag_p95"), seconds(lag && lag.p95_seconds)],
    [t("status.lag_samples"), count(lag && lag.samples)],
  ]);
  const q = status.queues;
  fields($("#queues"), [
    [t("status.tasks"), count(q.tasks)],
    [t("status.spool_segments"), q.spool_more ? t("status.at_least", { n: count(q.spool_segments) }) : count(q.spool_segments)],
    [t("status.spool_oldest"), seconds(q.spool_oldest_age_seconds)],
  ]);
  const f = status.failures;
  fields($("#failures"), [
    [t("status.pipeline_failures"), count(f.pipeline)],
    [t("status.parse_failed"), count(f.parse_failed)],
    [t("status.extract_failed"), count(f.extract_failed)],
  ]);
  const s = status.storage;
  fields($("#storage"), [
    [t("status.index_store"), bytes(s.index_store_bytes)],
    [t("status.index_free"), s.index_fs_total_bytes ? t("status.free_of", { free: bytes(s.index_fs_available_bytes), total: bytes(s.index_fs_total_bytes) }) : none()],
    [t("status.broker_memory"), bytes(s.broker_memory_bytes)],
    ...s.local.map((d) => [d.path, t("status.free_of", { free: bytes(d.free_bytes), total: bytes(d.total_bytes) })]),
  ]);
  const problems = Object.keys(status.errors);
  const banner = $("#status-errors");
  banner.hidden = problems.length === 0;
  banner.textContent = problems.length ? t("status.errors", { what: problems.join(", ") }) : "";
}

async function load() {
  try {
    show(await api("GET", "/api/status"));
  } catch (error) {
    showError(error);
  }
}

$("#refresh").addEventListener("click", load);
setInterval(load, REFRESH_MS);
load();
