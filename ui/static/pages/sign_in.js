import { api, ApiError, t } from "/ui/static/app.js";

const form = document.getElementById("sign-in-form");
const problem = document.getElementById("sign-in-error");

if (new URLSearchParams(location.search).get("expired")) {
  problem.textContent = t("sign_in.expired");
  problem.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    problem.textContent = t("sign_in.missing");
    problem.hidden = false;
    return;
  }
  try {
    await api("POST", "/api/session", { body: { username, password } });
    location.assign(form.dataset.next || "/ui/");
  } catch (error) {
    const key =
      error instanceof ApiError && error.status === 429
        ? "sign_in.throttled"
        : error instanceof ApiError && error.error === "AccountDisabled"
          ? "sign_in.disabled"
          : error instanceof ApiError && error.status === 401
            ? "sign_in.failed"
            : "sign_in.unavailable";
    problem.textContent = t(key);
    problem.hidden = false;
    form.elements.password.value = "";
    form.elements.password.focus();
  }
});
