// Helpers shared by the exports list and one export's page.
import { fmtNumber, h, t } from "/ui/static/app.js";

export const FINISHED = new Set(["done", "failed", "cancelled", "expired"]);
const TONE = { done: "good", failed: "bad", cancelled: "bad", expired: "" };

export function statusBadge(job) {
  return h("span", { class: `badge ${TONE[job.status] || ""}`, dataset: { status: job.status } },
    t(`exports.status_${job.status}`));
}

// 0–100: messages written (in completed parts and in the part being built) of those selected
export function percent(job) {
  if (job.status === "done") return 100;
  const p = job.progress || {};
  if (!p.selected) return 0;
  return Math.min(100, Math.floor((100 * ((p.written || 0) + (p.in_part || 0))) / p.selected));
}

export function progressBar(job, attrs) {
  const value = percent(job);
  return h("progress", { class: "progress", max: "100", value: String(value), "aria-label": t("exports.progress_of", { name: job.request.name }), ...attrs }, `${value}%`);
}

export function progressText(job) {
  const p = job.progress || {};
  if (job.status === "queued") return t("exports.waiting");
  if (job.status === "selecting") return t("exports.selecting");
  return t("exports.written", {
    written: fmtNumber((p.written || 0) + (job.status === "done" ? 0 : p.in_part || 0)),
    n: fmtNumber(p.selected || 0),
    percent: percent(job),
  });
}
