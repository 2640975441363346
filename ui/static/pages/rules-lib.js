// Helpers the admin pages share (rules, users); candidates for app.js.
import { ApiError, signInAgain, t } from "/ui/static/app.js";

// An API error as a sentence: FastAPI's 422 bodies carry a list of problems, not a message.
export function describe(error) {
  if (error instanceof ApiError && Array.isArray(error.body.detail)) {
    return error.body.detail
      .map((item) => `${(item.loc || []).filter((p) => p !== "body").join(".")}: ${item.msg}`)
      .join("; ");
  }
  return error instanceof Error ? error.message : String(error);
}

// A file as the request body (api() sends JSON only), with the session's CSRF token.
export async function sendFile(path, file, query) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const json = /\.json$/i.test(file.name) || file.type === "application/json";
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": json ? "application/json" : "text/csv",
      "X-CSRF-Token": document.querySelector('meta[name="mv-csrf"]').content,
    },
    body: file,
  });
  if (response.status === 401) {
    signInAgain();
    throw new ApiError(401, { message: t("common.session_ended") });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// "a, b，c" → ["a", "b", "c"] (Chinese commas too)
export function splitList(text) {
  return String(text || "")
    .split(/[,，、\n]/)
    .map((part) => part.trim())
    .filter(Boolean);
}
